//! One DDL-heavy schema script (`generated/ddl`: 100 statements, no rows,
//! or a real project's script given with `--script`) applied by each
//! database's own client (`mariadb`, `psql -f`, `sqlite3`), by the floor
//! (the script in one round trip) and by stowage, each on a fresh database,
//! from connecting to done. On MariaDB it also counts the server's commits
//! (`Handler_commit`) each one makes.

use crate::{Backend, Fresh, Result, fresh, median, median_ratio};
use sqlx::{AssertSqlSafe, Connection};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) static DDL: stowage::Migrator = stowage::embed_migrations!("generated/ddl");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applier {
    Client,
    Floor,
    Stowage,
}

const APPLIERS: [Applier; 3] = [Applier::Client, Applier::Floor, Applier::Stowage];

impl Applier {
    fn name(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (Applier::Client, Backend::Postgres) => "psql -f",
            (Applier::Client, Backend::MySql) => "mariadb < file",
            (Applier::Client, Backend::Sqlite) => "sqlite3 < file",
            (Applier::Floor, _) => "floor (one round trip)",
            (Applier::Stowage, _) => "stowage",
        }
    }
}

pub(crate) fn dialect(backend: Backend) -> stowage::Dialect {
    match backend {
        Backend::Postgres => stowage::Dialect::Postgres,
        Backend::MySql => stowage::Dialect::MySql,
        Backend::Sqlite => stowage::Dialect::Sqlite,
    }
}

/// The script's file, as the clients read it.
fn script_path(backend: Backend) -> String {
    let folder = match backend {
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
        Backend::Sqlite => "sqlite",
    };
    format!(
        "{}/generated/ddl/{folder}/0001_schema.sql",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The script the appliers run: the generated one, or a file given.
pub(crate) struct Script {
    /// The file the clients read.
    path: String,
    /// Its SQL, which the floor sends in one round trip.
    sql: String,
    /// The same as stowage's migrations.
    migrator: &'static stowage::Migrator,
}

impl Script {
    /// The generated DDL-heavy script of `backend`.
    pub(crate) fn generated(backend: Backend) -> Result<Script> {
        let set = DDL.set(dialect(backend)).ok_or("no set")?;
        Ok(Script {
            path: script_path(backend),
            sql: set.iter().map(stowage::Migration::up_sql).collect(),
            migrator: &DDL,
        })
    }

    /// The script in `path`, as one migration.
    pub(crate) fn file(path: &std::path::Path) -> Result<Script> {
        let sql = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let dir = stowage_tests::dir_of("1_script.sql", &sql);
        let migrator = Box::leak(Box::new(stowage::Migrator::from_dir(&dir)?));
        Ok(Script {
            path: path.display().to_string(),
            sql,
            migrator,
        })
    }

    /// Whether the floor can send it whole: not when it holds the mysql
    /// client's `DELIMITER` commands, which only a client reads.
    fn sent_whole(&self) -> bool {
        !self.sql.lines().any(|line| {
            line.trim_start()
                .get(..10)
                .is_some_and(|word| word.eq_ignore_ascii_case("DELIMITER "))
        })
    }
}

/// `user`, `password`, `host`, `port` and database of a `mysql://` URL.
pub(crate) fn mysql_parts(url: &str) -> Result<(String, String, String, String, String)> {
    let rest = url.strip_prefix("mysql://").ok_or("not a mysql:// URL")?;
    let (auth, rest) = rest.rsplit_once('@').ok_or("no user in the MySQL URL")?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (address, database) = rest.split_once('/').ok_or("no database in the MySQL URL")?;
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "3306"));
    let database = database.split('?').next().unwrap_or(database);
    Ok((
        user.to_owned(),
        password.to_owned(),
        host.to_owned(),
        port.to_owned(),
        database.to_owned(),
    ))
}

/// Apply the generated script to `db` with `applier`.
pub(crate) async fn apply(applier: Applier, db: &Fresh) -> Result<()> {
    apply_script(applier, db, &Script::generated(db.backend)?).await
}

/// Apply `script` to `db` with `applier`.
async fn apply_script(applier: Applier, db: &Fresh, script: &Script) -> Result<()> {
    let backend = db.backend;
    match (applier, backend) {
        (Applier::Client, _) => {
            let file = std::fs::File::open(&script.path)?;
            let mut command = match backend {
                Backend::Postgres => {
                    let mut c = Command::new("psql");
                    c.args(["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", &db.url]);
                    c
                }
                Backend::MySql => {
                    let (user, password, host, port, database) = mysql_parts(&db.url)?;
                    let mut c = Command::new("mariadb");
                    c.args(["-u", &user, "-h", &host, "-P", &port, &database]);
                    if !password.is_empty() {
                        c.env("MYSQL_PWD", password);
                    }
                    c
                }
                Backend::Sqlite => {
                    let mut c = Command::new("sqlite3");
                    c.args(["-bail", &db.sqlite_path()]);
                    c
                }
            };
            let status = command
                .stdin(file)
                .stdout(Stdio::null())
                .status()
                .map_err(|e| {
                    let package = match backend {
                        Backend::Postgres => "postgresql-client",
                        Backend::MySql => "mariadb-client",
                        Backend::Sqlite => "sqlite3",
                    };
                    format!(
                        "cannot start {}: {e} (Debian's package `{package}` has it)",
                        applier.name(backend)
                    )
                })?;
            if !status.success() {
                return Err(format!("{} failed: {status}", applier.name(backend)).into());
            }
        }
        (Applier::Floor, _) => {
            let sql = AssertSqlSafe(format!("BEGIN;\n{}\nCOMMIT;", script.sql));
            match backend {
                Backend::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&db.url).await?;
                    sqlx::raw_sql(sql).execute(&mut c).await?;
                }
                Backend::MySql => {
                    let mut c = sqlx::MySqlConnection::connect(&db.url).await?;
                    sqlx::raw_sql(sql).execute(&mut c).await?;
                }
                Backend::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
                    sqlx::raw_sql(sql).execute(&mut c).await?;
                }
            }
        }
        (Applier::Stowage, Backend::Postgres) => {
            let mut c = sqlx::PgConnection::connect(&db.url).await?;
            script.migrator.run(&mut c).await?;
        }
        (Applier::Stowage, Backend::MySql) => {
            let mut c = sqlx::MySqlConnection::connect(&db.url).await?;
            script.migrator.run(&mut c).await?;
        }
        (Applier::Stowage, Backend::Sqlite) => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
            script.migrator.run(&mut c).await?;
        }
    }
    Ok(())
}

/// The server's count of commits so far (MariaDB's `Handler_commit`).
async fn commits(server: &str) -> Result<i64> {
    let mut c = sqlx::MySqlConnection::connect(server).await?;
    let row: (String, String) = sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Handler_commit'")
        .fetch_one(&mut c)
        .await?;
    c.close().await?;
    Ok(row.1.parse()?)
}

/// The Markdown table of the comparison on `backends`, `trials` rounds,
/// on the generated script or the one in `file`.
pub(crate) async fn run(
    backends: &[Backend],
    trials: usize,
    file: Option<&std::path::Path>,
) -> Result<String> {
    let what = match file {
        Some(path) => format!("The script {}", path.display()),
        None => "One schema script of 100 DDL statements (40 tables with foreign keys, 30 \
                 indexes, 30 added columns)"
            .to_owned(),
    };
    let mut out = format!(
        "{what}, each applier on a fresh database, connecting included: median of {trials} \
         trials, and the median of the per-trial ratios to the database's own client. Commits: the \
         server's `Handler_commit` during the apply (MariaDB), median.\n\n\
         | backend | applier | apply | × client | commits |\n|---|---|---:|---:|---:|\n"
    );
    for &backend in backends {
        let script = match file {
            Some(path) => Script::file(path)?,
            None => Script::generated(backend)?,
        };
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); APPLIERS.len()];
        let mut counted: Vec<Vec<i64>> = vec![Vec::new(); APPLIERS.len()];
        for trial in 0..trials {
            // Rotate the order so that no applier always runs first.
            for k in 0..APPLIERS.len() {
                let index = (k + trial) % APPLIERS.len();
                let applier = APPLIERS[index];
                if applier == Applier::Floor && !script.sent_whole() {
                    continue;
                }
                let db = fresh(backend).await?;
                let before = match backend {
                    Backend::MySql => Some(commits(&db.server).await?),
                    _ => None,
                };
                let started = Instant::now();
                apply_script(applier, &db, &script).await?;
                let elapsed = started.elapsed();
                if let Some(before) = before {
                    counted[index].push(commits(&db.server).await? - before);
                }
                times[index].push(elapsed);
                eprintln!(
                    "{backend:?} trial {trial}: {} applied the script in {elapsed:.2?}",
                    applier.name(backend)
                );
                db.drop_it().await?;
            }
        }
        let client = times[0].clone();
        for (index, applier) in APPLIERS.iter().enumerate() {
            if times[index].is_empty() {
                // The floor, on a script only a client reads whole.
                let name = applier.name(backend);
                out.push_str(&format!("| {backend:?} | {name} | – | – | – |\n"));
                continue;
            }
            let ratio = median_ratio(&times[index], &client);
            let mut commits = counted[index].clone();
            commits.sort_unstable();
            let commits = commits
                .get(commits.len() / 2)
                .map_or("–".to_owned(), i64::to_string);
            out.push_str(&format!(
                "| {backend:?} | {} | {:.0} ms | {ratio:.2}× | {commits} |\n",
                applier.name(backend),
                median(times[index].clone()).as_secs_f64() * 1e3,
            ));
        }
    }
    Ok(out)
}
