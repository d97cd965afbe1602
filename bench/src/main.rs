//! stowage vs `sqlx::migrate!` vs refinery vs the floor (each migration's SQL
//! in its own `BEGIN; …; COMMIT;`, no bookkeeping), side by side in one run,
//! on the same generated set of 500 migrations.
//!
//! ```text
//! scripts/bench [--trials N] [--noop-iterations N] [postgres] [mysql] [sqlite]
//! scripts/bench testdb [--trials N] [backends]   # one test's database
//! scripts/bench suite [--trials N] [backends]    # whole suites, as users run them
//!     [--migrations 10|100|500] [--tests 10|100] [--runner cargo-test|nextest]
//! scripts/bench ddl [--trials N] [backends]      # one DDL-heavy script, against each client
//!     [--script FILE]                            # a real project's script instead
//! scripts/bench schema [--trials N] [backends]   # reading the schema, against each dump tool
//!     [--folder PATH]                            # a real project's folder instead
//! ```
//!
//! Servers come from `STOWAGE_BENCH_PG_URL` / `STOWAGE_BENCH_MYSQL_URL`
//! (`scripts/bench` starts throwaway ones when they are not set). Each
//! apply-all trial runs on a fresh database; the no-op figure is the median
//! of many up-to-date runs on one connection, next to the median of
//! `SELECT 1` on the same connection.

mod ddl;
mod schema;
mod suite;
mod testdb;

use sqlx::{AssertSqlSafe, Connection, Executor};
use std::time::{Duration, Instant};

static STOWAGE: stowage::Migrator = stowage::embed_migrations!("generated/sqlx");
static SQLX_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx/postgres");
static SQLX_MYSQL: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx/mysql");
static SQLX_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx/sqlite");

mod refinery_postgres {
    refinery::embed_migrations!("generated/refinery/postgres");
}
mod refinery_mysql {
    refinery::embed_migrations!("generated/refinery/mysql");
}
mod refinery_sqlite {
    refinery::embed_migrations!("generated/refinery/sqlite");
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    MySql,
    Sqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Floor,
    Stowage,
    Sqlx,
    Refinery,
}

const TOOLS: [Tool; 4] = [Tool::Floor, Tool::Stowage, Tool::Sqlx, Tool::Refinery];

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Floor => "floor (BEGIN; sql; COMMIT)",
            Tool::Stowage => "stowage",
            Tool::Sqlx => "sqlx::migrate!",
            Tool::Refinery => "refinery",
        }
    }
}

struct Options {
    trials: usize,
    noop_iterations: usize,
    backends: Vec<Backend>,
    testdb: bool,
    suite: bool,
    ddl: bool,
    schema: bool,
    /// A migrations folder for `schema` instead of the DDL-heavy script.
    folder: Option<std::path::PathBuf>,
    /// A schema script for `ddl` instead of the generated one.
    script: Option<std::path::PathBuf>,
    /// Which of the suite benchmark's configurations to run (all by default).
    only: suite::Only,
}

fn options() -> Result<Options> {
    let mut options = Options {
        trials: 3,
        noop_iterations: 300,
        backends: Vec::new(),
        testdb: false,
        suite: false,
        ddl: false,
        schema: false,
        folder: None,
        script: None,
        only: suite::Only::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trials" => options.trials = args.next().ok_or("--trials needs a number")?.parse()?,
            "--noop-iterations" => {
                options.noop_iterations = args
                    .next()
                    .ok_or("--noop-iterations needs a number")?
                    .parse()?;
            }
            "--migrations" | "--tests" | "--runner" => {
                let value = args.next().ok_or(format!("{arg} needs a value"))?;
                options.only.set(&arg, &value)?;
            }
            "--script" => {
                options.script = Some(args.next().ok_or("--script needs a path")?.into());
            }
            "--folder" => {
                options.folder = Some(args.next().ok_or("--folder needs a path")?.into());
            }
            "testdb" => options.testdb = true,
            "suite" => options.suite = true,
            "ddl" => options.ddl = true,
            "schema" => options.schema = true,
            "postgres" => options.backends.push(Backend::Postgres),
            "mysql" => options.backends.push(Backend::MySql),
            "sqlite" => options.backends.push(Backend::Sqlite),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if options.backends.is_empty() {
        options.backends = vec![Backend::Postgres, Backend::MySql, Backend::Sqlite];
    }
    Ok(options)
}

fn server_url(backend: Backend) -> Result<String> {
    let (var, fallback) = match backend {
        Backend::Postgres => ("STOWAGE_BENCH_PG_URL", "STOWAGE_TEST_PG_URL"),
        Backend::MySql => ("STOWAGE_BENCH_MYSQL_URL", "STOWAGE_TEST_MYSQL_URL"),
        Backend::Sqlite => return Ok(String::new()),
    };
    std::env::var(var)
        .or_else(|_| std::env::var(fallback))
        .map_err(|_| {
            format!("{var} is not set; run scripts/bench, which starts throwaway servers").into()
        })
}

fn with_database(url: &str, database: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    format!("{}/{database}", &url[..path_start])
}

/// A fresh database: its URL, and how to drop it.
struct Fresh {
    backend: Backend,
    server: String,
    name: String,
    url: String,
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn fresh(backend: Backend) -> Result<Fresh> {
    let name = format!(
        "stowage_bench_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let server = server_url(backend)?;
    let url = match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&server).await?;
            conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await?;
            with_database(&server, &name)
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(&server).await?;
            conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await?;
            with_database(&server, &name)
        }
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    };
    Ok(Fresh {
        backend,
        server,
        name,
        url,
    })
}

impl Fresh {
    fn sqlite_path(&self) -> String {
        self.url
            .trim_start_matches("sqlite://")
            .trim_end_matches("?mode=rwc")
            .to_owned()
    }

    async fn drop_it(self) -> Result<()> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.server).await?;
                conn.execute(AssertSqlSafe(format!(
                    "DROP DATABASE {} WITH (FORCE)",
                    self.name
                )))
                .await?;
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.server).await?;
                conn.execute(AssertSqlSafe(format!("DROP DATABASE {}", self.name)))
                    .await?;
            }
            Backend::Sqlite => {
                let _ = std::fs::remove_file(self.sqlite_path());
            }
        }
        Ok(())
    }
}

/// A connection of the tool under test, kept for the no-op measurement.
enum Session {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
    RefineryPostgres(tokio_postgres::Client),
    RefineryMySql(mysql_async::Pool),
    RefinerySqlite(rusqlite::Connection),
}

async fn connect(tool: Tool, db: &Fresh) -> Result<Session> {
    Ok(match (tool, db.backend) {
        (Tool::Refinery, Backend::Postgres) => {
            let (client, connection) =
                tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Session::RefineryPostgres(client)
        }
        (Tool::Refinery, Backend::MySql) => {
            Session::RefineryMySql(mysql_async::Pool::new(db.url.as_str()))
        }
        (Tool::Refinery, Backend::Sqlite) => {
            Session::RefinerySqlite(rusqlite::Connection::open(db.sqlite_path())?)
        }
        (_, Backend::Postgres) => Session::Postgres(sqlx::PgConnection::connect(&db.url).await?),
        (_, Backend::MySql) => Session::MySql(sqlx::MySqlConnection::connect(&db.url).await?),
        (_, Backend::Sqlite) => Session::Sqlite(sqlx::SqliteConnection::connect(&db.url).await?),
    })
}

/// Apply every migration with `tool`, or (when up to date) check that nothing is pending.
async fn migrate(tool: Tool, session: &mut Session) -> Result<()> {
    match (tool, session) {
        (Tool::Floor, session) => floor(session).await?,
        (Tool::Stowage, Session::Postgres(c)) => drop(STOWAGE.run(c).await?),
        (Tool::Stowage, Session::MySql(c)) => drop(STOWAGE.run(c).await?),
        (Tool::Stowage, Session::Sqlite(c)) => drop(STOWAGE.run(c).await?),
        (Tool::Sqlx, Session::Postgres(c)) => SQLX_POSTGRES.run(c).await?,
        (Tool::Sqlx, Session::MySql(c)) => SQLX_MYSQL.run(c).await?,
        (Tool::Sqlx, Session::Sqlite(c)) => SQLX_SQLITE.run(c).await?,
        (Tool::Refinery, Session::RefineryPostgres(c)) => {
            refinery_postgres::migrations::runner().run_async(c).await?;
        }
        (Tool::Refinery, Session::RefineryMySql(c)) => {
            refinery_mysql::migrations::runner().run_async(c).await?;
        }
        (Tool::Refinery, Session::RefinerySqlite(c)) => {
            refinery_sqlite::migrations::runner().run(c)?;
        }
        _ => return Err("tool and session do not match".into()),
    }
    Ok(())
}

/// The floor: each migration's SQL in its own transaction, one round trip each.
async fn floor(session: &mut Session) -> Result<()> {
    macro_rules! each {
        ($conn:expr, $dialect:expr) => {{
            let set = STOWAGE.set($dialect).ok_or("no set")?;
            for migration in set {
                let sql = format!("BEGIN;\n{}\nCOMMIT;", migration.up_sql());
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut *$conn)
                    .await?;
            }
        }};
    }
    match session {
        Session::Postgres(c) => each!(c, stowage::Dialect::Postgres),
        Session::MySql(c) => each!(c, stowage::Dialect::MySql),
        Session::Sqlite(c) => each!(c, stowage::Dialect::Sqlite),
        _ => return Err("the floor runs on sqlx connections".into()),
    }
    Ok(())
}

/// One `SELECT 1` round trip on the session's connection.
async fn select_one(session: &mut Session) -> Result<()> {
    match session {
        Session::Postgres(c) => {
            c.execute("SELECT 1").await?;
        }
        Session::MySql(c) => {
            c.execute("SELECT 1").await?;
        }
        Session::Sqlite(c) => {
            c.execute("SELECT 1").await?;
        }
        Session::RefineryPostgres(c) => drop(c.simple_query("SELECT 1").await?),
        Session::RefineryMySql(pool) => {
            use mysql_async::prelude::Queryable;
            pool.get_conn().await?.query_drop("SELECT 1").await?;
        }
        Session::RefinerySqlite(c) => drop(c.execute_batch("SELECT 1")?),
    }
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// The median over trials of `times` divided by `base`, trial by trial.
fn median_ratio(times: &[Duration], base: &[Duration]) -> f64 {
    let mut ratios: Vec<f64> = times
        .iter()
        .zip(base)
        .map(|(t, b)| t.as_secs_f64() / b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Row {
    tool: Tool,
    apply_all: Duration,
    /// Median over trials of this tool's time ÷ the floor's time in the same trial.
    ratio: f64,
    noop: Option<(Duration, Duration)>,
}

async fn bench_backend(backend: Backend, options: &Options) -> Result<Vec<Row>> {
    let mut apply: Vec<Vec<Duration>> = vec![Vec::new(); TOOLS.len()];
    let mut noop: Vec<Option<(Duration, Duration)>> = vec![None; TOOLS.len()];
    for trial in 0..options.trials {
        // Rotate the order so that no tool always runs first.
        for k in 0..TOOLS.len() {
            let index = (k + trial) % TOOLS.len();
            let tool = TOOLS[index];
            let db = fresh(backend).await?;
            let mut session = connect(tool, &db).await?;
            let started = Instant::now();
            migrate(tool, &mut session).await?;
            let elapsed = started.elapsed();
            apply[index].push(elapsed);
            eprintln!(
                "{backend:?} trial {trial}: {} applied 500 migrations in {elapsed:.2?}",
                tool.name()
            );
            if trial == 0 && tool != Tool::Floor {
                noop[index] =
                    Some(measure_noop(tool, &mut session, options.noop_iterations).await?);
            }
            drop(session);
            db.drop_it().await?;
        }
    }
    let floor = apply[0].clone();
    Ok(TOOLS
        .iter()
        .zip(apply)
        .zip(noop)
        .map(|((tool, apply), noop)| {
            let ratio = median_ratio(&apply, &floor);
            Row {
                tool: *tool,
                apply_all: median(apply),
                ratio,
                noop,
            }
        })
        .collect())
}

/// Medians of an up-to-date run and of `SELECT 1`, interleaved on one connection.
async fn measure_noop(
    tool: Tool,
    session: &mut Session,
    iterations: usize,
) -> Result<(Duration, Duration)> {
    for _ in 0..20 {
        migrate(tool, session).await?;
        select_one(session).await?;
    }
    let mut runs = Vec::with_capacity(iterations);
    let mut selects = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        migrate(tool, session).await?;
        runs.push(started.elapsed());
        let started = Instant::now();
        select_one(session).await?;
        selects.push(started.elapsed());
    }
    Ok((median(runs), median(selects)))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let options = options()?;
    if options.testdb {
        println!("{}", testdb::run(&options.backends, options.trials).await?);
        return Ok(());
    }
    if options.ddl {
        let script = options.script.as_deref();
        println!(
            "{}",
            ddl::run(&options.backends, options.trials, script).await?
        );
        return Ok(());
    }
    if options.schema {
        println!(
            "{}",
            schema::run(&options.backends, options.trials, options.folder.as_deref()).await?
        );
        return Ok(());
    }
    if options.suite {
        println!(
            "{}",
            suite::run(&options.backends, options.trials, &options.only)?
        );
        return Ok(());
    }
    let mut out = String::new();
    out.push_str(&format!(
        "500 migrations (one table, one index, three rows each). apply-all: median of {} trials, each tool on \
         a fresh database; × floor: median of the per-trial ratios to the floor. no-op: median of {} \
         up-to-date runs, next to the median `SELECT 1` interleaved on the same connection.\n\n",
        options.trials, options.noop_iterations
    ));
    out.push_str(
        "| backend | tool | apply-all | × floor | no-op | SELECT 1 | no-op ÷ SELECT 1 |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for &backend in &options.backends {
        let rows = bench_backend(backend, &options).await?;
        for row in &rows {
            let (noop, select, ratio) = match row.noop {
                Some((noop, select)) => (
                    format!("{:.0} µs", noop.as_secs_f64() * 1e6),
                    format!("{:.0} µs", select.as_secs_f64() * 1e6),
                    format!("{:.2}×", noop.as_secs_f64() / select.as_secs_f64()),
                ),
                None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
            };
            out.push_str(&format!(
                "| {backend:?} | {} | {:.0} ms | {:.2}× | {noop} | {select} | {ratio} |\n",
                row.tool.name(),
                row.apply_all.as_secs_f64() * 1e3,
                row.ratio,
            ));
        }
    }
    println!("{out}");
    Ok(())
}
