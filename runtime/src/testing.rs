//! Throwaway, fully migrated databases for tests, in constant time whatever
//! the number of migrations (feature `testing`).
//!
//! The migrations run once per migration set, into a template named by the
//! set's chain head; each test then gets a copy:
//!
//! - PostgreSQL: `CREATE DATABASE … TEMPLATE …`;
//! - MySQL/MariaDB: the template schema's tables (with their rows), views,
//!   triggers and routines recreated from their own definitions;
//! - SQLite: a copy of the template file.
//!
//! On PostgreSQL and MySQL a copy takes about what creating that many tables
//! takes, so copies are made ahead of time: while a test runs, a thread of its
//! own makes a spare copy for a later test, and a test that finds a spare
//! claims it at once (PostgreSQL renames it; MySQL drops the table that marks
//! it, and dates the claim in `stowage_claims.claims` for [`cleanup`]). A test
//! that finds a spare ready gets its database in a few milliseconds, whatever
//! the number of migrations; one that finds none (the first, or more tests at
//! once than there are spares) makes its copy itself. Dropping a [`TestDb`]
//! waits for the spare it started. `STOWAGE_TEST_SPARES` sets how many spares
//! to keep ready per template (default: the number of CPUs, at most 8; up to
//! twice as many exist while copies are being made); `0` turns them off, and
//! then no spare is made or claimed. Spares are ordinary test databases named
//! `stowage_test_…` that stay on the server for the next run of the suite; one
//! left unclaimed for an hour (of a migration set no longer tested, say) is
//! dropped by the next test that makes a spare, and [`cleanup`] sweeps them by
//! age like the rest.
//!
//! The server comes from `STOWAGE_TEST_DATABASE_URL`, else `DATABASE_URL`;
//! without either, SQLite files in the temporary folder. Any `sqlite:` URL
//! (`sqlite::memory:` included) means files there: copying a template file
//! takes about a millisecond, and a file outlives its connections, so a
//! failing test's database can be kept. A test's database is
//! dropped when its [`TestDb`] is dropped, unless the test failed: then it is
//! kept and its name printed, for a look after the fact. [`cleanup`] sweeps
//! the leftovers.
//!
//! ```no_run
//! static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../migrations");
//!
//! #[stowage::test(migrator = "MIGRATOR")]
//! async fn creates_a_todo(pool: sqlx::AnyPool) {
//!     sqlx::query("INSERT INTO todos (title) VALUES ('write tests')")
//!         .execute(&pool)
//!         .await
//!         .unwrap();
//! }
//! ```

use crate::connect::redact;
use crate::{Dialect, Error, Migrator};
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The prefix of every database [`TestDb`] creates; [`cleanup`] drops only these.
const PREFIX: &str = "stowage_test_";

/// A fresh database for one test, migrated to head (or empty).
#[derive(Debug)]
pub struct TestDb {
    dialect: Dialect,
    server: String,
    name: String,
    url: String,
    keep: bool,
    /// Whether the database may exist on the server: not before a failed
    /// `on` reached it, so that dropping that value connects nowhere.
    created: bool,
    /// The spare copy being made for a later test, waited for on drop.
    refill: Option<std::thread::JoinHandle<()>>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A new test database name: `stowage_test_<created>_<process>_<n>`.
fn new_name() -> String {
    format!(
        "{PREFIX}{}_{}_{}",
        now_secs(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn dialect_of(url: &str) -> Result<Dialect, Error> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Dialect::Postgres)
    } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        Ok(Dialect::MySql)
    } else if url.starts_with("sqlite:") {
        Ok(Dialect::Sqlite)
    } else {
        Err(Error::InvalidUrl {
            url: redact(url),
            reason: "the scheme is not postgres, mysql or sqlite".to_owned(),
        })
    }
}

/// Replace the database (the URL's path) of a server URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn sqlite_dir() -> PathBuf {
    std::env::temp_dir().join("stowage-testdb")
}

/// The server tests use: `STOWAGE_TEST_DATABASE_URL`, else `DATABASE_URL`,
/// else SQLite in the temporary folder.
pub fn server_from_env() -> String {
    std::env::var("STOWAGE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "sqlite://".to_owned())
}

fn test_error(what: &str, server: &str) -> impl FnOnce(sqlx::Error) -> Error + use<> {
    let (what, server) = (what.to_owned(), redact(server));
    move |source| {
        let hint = match source
            .as_database_error()
            .and_then(|db| db.code())
            .as_deref()
        {
            Some("42501") => {
                " (the user may not create databases: `ALTER ROLE … CREATEDB` on PostgreSQL)"
            }
            Some("42000") => {
                " (the user may not create databases: `GRANT ALL ON *.* TO …` on MySQL)"
            }
            _ => "",
        };
        Error::Database {
            context: format!("{what} on {server}{hint}"),
            source,
        }
    }
}

/// Run statements of stowage's own making (every name in them generated
/// here) on a maintenance connection; the error names the step. A macro: a
/// generic async fn over sqlx executors would cost its callers' futures their
/// `Send` (rust-lang/rust#100013; `tests/tests/send.rs`).
macro_rules! run {
    ($conn:expr, $sql:expr, $what:expr, $server:expr) => {
        sqlx::raw_sql(AssertSqlSafe($sql))
            .execute($conn)
            .await
            .map(drop)
            .map_err(test_error($what, $server))
    };
}

impl TestDb {
    /// A fresh database on the server from the environment
    /// ([`server_from_env`]), migrated to head.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached, the user may not create databases,
    /// or the migrations fail.
    pub async fn new(migrator: &Migrator) -> Result<TestDb, Error> {
        TestDb::on(&server_from_env(), migrator).await
    }

    /// A fresh database on `server`, migrated to head.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub async fn on(server: &str, migrator: &Migrator) -> Result<TestDb, Error> {
        let spares = spares_wanted()?;
        let mut db = TestDb::create(server).await?;
        let template = template_name(migrator, db.dialect)?;
        // One maintenance connection makes sure of the template, then claims
        // a spare copy or makes one.
        match db.dialect {
            Dialect::Postgres => {
                let mut conn = maintenance_pg(server).await?;
                postgres_template(&mut conn, server, &template, migrator).await?;
                db.created = true;
                if spares == 0 || !claim_postgres(&mut conn, server, &template, &db.name).await? {
                    clone_postgres(&mut conn, server, &template, &db.name).await?;
                }
            }
            Dialect::MySql => {
                let mut conn = maintenance_mysql(server).await?;
                mysql_template(&mut conn, server, &template, migrator).await?;
                db.created = true;
                let claimed = match spares {
                    0 => None,
                    _ => claim_mysql(&mut conn, server, &template).await?,
                };
                match claimed {
                    Some(spare) => {
                        db.url = with_database(server, &spare);
                        db.name = spare;
                    }
                    None => clone_mysql(&mut conn, server, &template, &db.name, None).await?,
                }
            }
            Dialect::Sqlite => {
                sqlite_template(&template, migrator).await?;
                let from = sqlite_dir().join(format!("{template}.db"));
                let to = sqlite_dir().join(format!("{}.db", db.name));
                db.created = true;
                std::fs::copy(&from, &to).map_err(|e| {
                    Error::InvalidConfig(format!(
                        "cannot copy the SQLite template {}: {e}",
                        from.display()
                    ))
                })?;
            }
        }
        if spares > 0 && db.dialect != Dialect::Sqlite {
            db.refill = start_refill(db.dialect, server, &template, spares);
        }
        Ok(db)
    }

    /// A fresh, empty database on `server`, with the same life cycle.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the user may not create databases.
    pub async fn empty_on(server: &str) -> Result<TestDb, Error> {
        let mut db = TestDb::create(server).await?;
        match db.dialect {
            Dialect::Postgres => {
                let mut conn = maintenance_pg(server).await?;
                db.created = true;
                let sql = format!("CREATE DATABASE {}", db.name);
                run!(&mut conn, sql, "cannot create a test database", server)?;
            }
            Dialect::MySql => {
                let mut conn = maintenance_mysql(server).await?;
                db.created = true;
                let sql = format!("CREATE DATABASE {}", db.name);
                run!(&mut conn, sql, "cannot create a test database", server)?;
            }
            Dialect::Sqlite => {
                db.created = true;
                std::fs::File::create(sqlite_dir().join(format!("{}.db", db.name))).map_err(
                    |e| Error::InvalidConfig(format!("cannot create a SQLite test file: {e}")),
                )?;
            }
        }
        Ok(db)
    }

    /// Name and URL of a new test database; nothing created yet.
    async fn create(server: &str) -> Result<TestDb, Error> {
        let dialect = dialect_of(server)?;
        let name = new_name();
        let url = match dialect {
            Dialect::Sqlite => {
                std::fs::create_dir_all(sqlite_dir()).map_err(|e| {
                    Error::InvalidConfig(format!("cannot create {}: {e}", sqlite_dir().display()))
                })?;
                format!(
                    "sqlite://{}",
                    sqlite_dir().join(format!("{name}.db")).display()
                )
            }
            _ => with_database(server, &name),
        };
        Ok(TestDb {
            dialect,
            server: server.to_owned(),
            name,
            url,
            keep: false,
            created: false,
            refill: None,
        })
    }

    /// The database's URL (with its password, for connecting).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (for SQLite, the file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A new pool on the database: `PgPool`, `MySqlPool`, `SqlitePool` or `AnyPool`.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached.
    pub async fn pool<DB: crate::Backend>(&self) -> Result<sqlx::Pool<DB>, Error> {
        let options = crate::ConnectOptions::default()
            .timeout(Duration::from_secs(10))
            .create_database(false);
        crate::connect_with(&self.url, options).await
    }

    /// Keep the database when this value is dropped, and print its name.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.name.is_empty() || !self.created {
            // Moved into the test by `#[stowage::test]`, or never made.
            return;
        }
        if let Some(refill) = self.refill.take() {
            // A spare left half-made by this process would serve no one.
            let _ = refill.join();
        }
        if self.keep || std::thread::panicking() {
            eprintln!(
                "stowage: kept the database of a failing test: {} ({})",
                self.name,
                redact(&self.url)
            );
            return;
        }
        let (dialect, server, name) = (self.dialect, self.server.clone(), self.name.clone());
        // Drop runs in sync code, perhaps inside a runtime: use a thread of our own.
        let dropped = std::thread::spawn(move || drop_database(dialect, &server, &name)).join();
        if let Ok(Err(error)) = dropped {
            eprintln!(
                "stowage: could not drop the test database {}: {error}",
                self.name
            );
        }
    }
}

fn drop_database(dialect: Dialect, server: &str, name: &str) -> Result<(), Error> {
    if dialect == Dialect::Sqlite {
        let _ = std::fs::remove_file(sqlite_dir().join(format!("{name}.db")));
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidConfig(format!("cannot start a runtime to drop {name}: {e}")))?;
    runtime.block_on(drop_server_database(dialect, server, name))
}

async fn drop_server_database(dialect: Dialect, server: &str, name: &str) -> Result<(), Error> {
    let what = "cannot drop a test database";
    let sql = format!("DROP DATABASE IF EXISTS {name}");
    if dialect == Dialect::Postgres {
        let mut conn = maintenance_pg(server).await?;
        return run!(&mut conn, format!("{sql} WITH (FORCE)"), what, server);
    }
    let mut conn = maintenance_mysql(server).await?;
    run!(&mut conn, sql, what, server)?;
    forget_claim(&mut conn, name).await;
    Ok(())
}

async fn maintenance_pg(server: &str) -> Result<sqlx::PgConnection, Error> {
    crate::connect::connect_one::<sqlx::Postgres>(server, Duration::from_secs(10)).await
}

async fn maintenance_mysql(server: &str) -> Result<sqlx::MySqlConnection, Error> {
    crate::connect::connect_one::<sqlx::MySql>(server, Duration::from_secs(10)).await
}

/// The template's name: the dialect's chain head, so that a changed set of
/// migrations gets a template of its own.
///
/// # Errors
///
/// When the migrator has no migrations for `dialect`.
pub fn template_name(migrator: &Migrator, dialect: Dialect) -> Result<String, Error> {
    let set = migrator
        .set(dialect)
        .ok_or(Error::NoMigrationsForDialect { dialect })?;
    let chain = set.head().map_or([0; 32], |head| head.chain);
    let hex: String = chain.iter().take(12).map(|b| format!("{b:02x}")).collect();
    Ok(format!("stowage_tpl_{hex}"))
}

async fn postgres_template(
    conn: &mut sqlx::PgConnection,
    server: &str,
    name: &str,
    migrator: &Migrator,
) -> Result<(), Error> {
    let ready = "SELECT COUNT(*) FROM pg_database WHERE datname = $1 AND datistemplate";
    let count: i64 = sqlx::query_scalar(ready)
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(test_error("cannot look for the template", server))?;
    if count == 1 {
        return Ok(());
    }
    // One process builds it; the others wait on the lock, then find it ready.
    let lock = "SELECT pg_advisory_lock(hashtext('stowage-template:' || $1))";
    sqlx::query(lock)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(test_error("cannot lock", server))?;
    let result = async {
        let count: i64 = sqlx::query_scalar(ready)
            .bind(name)
            .fetch_one(&mut *conn)
            .await
            .map_err(test_error("cannot look for the template", server))?;
        if count == 1 {
            return Ok(());
        }
        // A template left half-built by a crash is rebuilt.
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        run!(&mut *conn, sql, "cannot drop a half-built template", server)?;
        let sql = format!("CREATE DATABASE {name}");
        run!(
            &mut *conn,
            sql,
            "cannot create the template database",
            server
        )?;
        let url = with_database(server, name);
        let mut template = sqlx::PgConnection::connect(&url)
            .await
            .map_err(test_error("cannot connect to the template", server))?;
        migrator.run(&mut template).await?;
        template
            .close()
            .await
            .map_err(test_error("cannot close the template", server))?;
        // No one may connect to it from now on, so copies never find it busy.
        let sql = format!("ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false");
        run!(&mut *conn, sql, "cannot mark the template", server)?;
        Ok(())
    }
    .await;
    let unlock = "SELECT pg_advisory_unlock(hashtext('stowage-template:' || $1))";
    let _ = sqlx::query(unlock).bind(name).execute(&mut *conn).await;
    result
}

async fn clone_postgres(
    conn: &mut sqlx::PgConnection,
    server: &str,
    template: &str,
    name: &str,
) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        let result = sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {template}"
        )))
        .execute(&mut *conn)
        .await;
        match result {
            Ok(_) => return Ok(()),
            // "source database is being accessed by other users": the server has
            // waited 5 s for them to leave; once more, for a builder that is
            // just disconnecting.
            Err(error)
                if attempt < 1
                    && error
                        .as_database_error()
                        .and_then(|db| db.code())
                        .as_deref()
                        == Some("55006") =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => {
                return Err(test_error(
                    &format!("cannot copy the template {template} (is a session connected to it?)"),
                    server,
                )(error));
            }
        }
    }
}

/// The table whose presence says a MySQL template is complete.
const MYSQL_READY: &str = "stowage_template_ready";

async fn mysql_ready(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    name: &str,
) -> Result<bool, Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
    )
    .bind(name)
    .bind(MYSQL_READY)
    .fetch_one(conn)
    .await
    .map_err(test_error("cannot look for the template", server))?;
    Ok(count == 1)
}

async fn mysql_template(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    name: &str,
    migrator: &Migrator,
) -> Result<(), Error> {
    if mysql_ready(conn, server, name).await? {
        return Ok(());
    }
    let lock: Option<i64> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('stowage-template:', ?), 600)")
            .bind(name)
            .fetch_one(&mut *conn)
            .await
            .map_err(test_error("cannot lock", server))?;
    if lock != Some(1) {
        return Err(Error::LockTimeout {
            waited: Duration::from_secs(600),
            holder: None,
        });
    }
    let result = async {
        if mysql_ready(conn, server, name).await? {
            return Ok(());
        }
        let sql = format!("DROP DATABASE IF EXISTS {name}");
        run!(&mut *conn, sql, "cannot drop a half-built template", server)?;
        let sql = format!("CREATE DATABASE {name}");
        run!(&mut *conn, sql, "cannot create the template schema", server)?;
        let url = with_database(server, name);
        let mut template = sqlx::MySqlConnection::connect(&url)
            .await
            .map_err(test_error("cannot connect to the template", server))?;
        migrator.run(&mut template).await?;
        let sql = format!("CREATE TABLE {MYSQL_READY} (ready INT)");
        run!(&mut template, sql, "cannot mark the template", server)?;
        Ok(())
    }
    .await;
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('stowage-template:', ?))")
        .bind(name)
        .execute(&mut *conn)
        .await;
    result
}

/// Recreate the template schema's objects in a new schema, from their own
/// definitions, in one multi-statement round trip per kind.
async fn clone_mysql(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    template: &str,
    name: &str,
    spare_mark: Option<&str>,
) -> Result<(), Error> {
    let fail = |what: &str| {
        test_error(
            &format!("cannot copy the template {template}: {what}"),
            server,
        )
    };
    let names = |kind: &str| {
        format!(
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{template}' \
             AND TABLE_TYPE = '{kind}' AND TABLE_NAME <> '{MYSQL_READY}' ORDER BY TABLE_NAME"
        )
    };
    let tables: Vec<String> = sqlx::query_scalar(AssertSqlSafe(names("BASE TABLE")))
        .fetch_all(&mut *conn)
        .await
        .map_err(fail("tables"))?;
    let views: Vec<String> = sqlx::query_scalar(AssertSqlSafe(names("VIEW")))
        .fetch_all(&mut *conn)
        .await
        .map_err(fail("views"))?;
    let mut script = vec![
        format!("CREATE DATABASE {name}"),
        format!("USE {name}"),
        "SET FOREIGN_KEY_CHECKS = 0".to_owned(),
    ];
    for table in &tables {
        let sql = format!("SHOW CREATE TABLE `{template}`.`{table}`");
        script.push(
            show_create(&mut *conn, sql, 1)
                .await
                .map_err(fail("table definitions"))?,
        );
    }
    // The rows (seed data, the history) in one transaction: one commit.
    script.push("START TRANSACTION".to_owned());
    for table in &tables {
        script.push(format!(
            "INSERT INTO `{name}`.`{table}` SELECT * FROM `{template}`.`{table}`"
        ));
    }
    script.push("COMMIT".to_owned());
    for view in &views {
        let sql = format!("SHOW CREATE VIEW `{template}`.`{view}`");
        let definition = show_create(&mut *conn, sql, 1)
            .await
            .map_err(fail("view definitions"))?;
        script.push(definition.replace(&format!("`{template}`."), ""));
    }
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
    )
    .bind(template)
    .fetch_all(&mut *conn)
    .await
    .map_err(fail("triggers"))?;
    for trigger in &triggers {
        let sql = format!("SHOW CREATE TRIGGER `{template}`.`{trigger}`");
        script.push(
            show_create(&mut *conn, sql, 2)
                .await
                .map_err(fail("trigger definitions"))?,
        );
    }
    let routines: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(ROUTINE_TYPE AS CHAR), CAST(ROUTINE_NAME AS CHAR) FROM information_schema.ROUTINES \
         WHERE ROUTINE_SCHEMA = ?",
    )
    .bind(template)
    .fetch_all(&mut *conn)
    .await
    .map_err(fail("routines"))?;
    for (kind, routine) in &routines {
        let sql = format!("SHOW CREATE {kind} `{template}`.`{routine}`");
        script.push(
            show_create(&mut *conn, sql, 2)
                .await
                .map_err(fail("routine definitions"))?,
        );
    }
    script.push("SET FOREIGN_KEY_CHECKS = 1".to_owned());
    if let Some(mark) = spare_mark {
        // Last, so that a marked spare is a complete one.
        script.push(format!("CREATE TABLE `{name}`.`{mark}` (spare INT)"));
    }
    sqlx::raw_sql(AssertSqlSafe(script.join(";\n")))
        .execute(&mut *conn)
        .await
        .map_err(fail("recreating its objects"))?;
    Ok(())
}

/// The definition in column `column` of a MySQL `SHOW CREATE …` statement.
async fn show_create(
    conn: &mut sqlx::MySqlConnection,
    sql: String,
    column: usize,
) -> Result<String, sqlx::Error> {
    conn.fetch_one(AssertSqlSafe(sql))
        .await?
        .try_get::<String, _>(column)
}

/// How many spare copies to keep ready per template: `STOWAGE_TEST_SPARES`,
/// else the number of CPUs (at most 8).
fn spares_wanted() -> Result<usize, Error> {
    match std::env::var("STOWAGE_TEST_SPARES") {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map_err(|_| {
            Error::InvalidConfig(format!(
                "STOWAGE_TEST_SPARES must be the number of spare copies to keep ready \
                 (0 turns them off), not {value:?}"
            ))
        }),
        _ => Ok(std::thread::available_parallelism().map_or(2, |n| n.get().min(8))),
    }
}

/// The part of a template's name that is its chain head.
fn template_hash(template: &str) -> &str {
    template.strip_prefix("stowage_tpl_").unwrap_or(template)
}

/// The end of the name of a PostgreSQL spare of `template`.
fn postgres_spare_suffix(template: &str) -> String {
    let hash = template_hash(template);
    format!("_spare_{}", &hash[..hash.len().min(12)])
}

/// A `LIKE` pattern for the names of the PostgreSQL spares of `template`.
fn postgres_spare_pattern(template: &str) -> String {
    format!(
        "stowage\\_test\\_%{}",
        postgres_spare_suffix(template).replace('_', "\\_")
    )
}

/// Where MySQL claims are dated: a claimed spare keeps the name (and so the
/// date) it was made with, and [`cleanup`] must not take it for an old one.
const MYSQL_CLAIMS: &str = "stowage_claims.claims";

/// The table that marks a MySQL schema as a complete, unclaimed spare of `template`.
fn mysql_spare_mark(template: &str) -> String {
    format!("stowage_spare_{}", template_hash(template))
}

/// Our own names only: nothing to quote.
fn plain_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Claim a spare copy of `template` by renaming it to `name`; false if none is left.
async fn claim_postgres(
    conn: &mut sqlx::PgConnection,
    server: &str,
    template: &str,
    name: &str,
) -> Result<bool, Error> {
    let spares: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY random()",
    )
    .bind(postgres_spare_pattern(template))
    .fetch_all(&mut *conn)
    .await
    .map_err(test_error("cannot look for spare copies", server))?;
    for spare in spares.iter().filter(|s| plain_name(s)) {
        // Another test may have claimed it first; then try the next.
        let rename = format!("ALTER DATABASE {spare} RENAME TO {name}");
        if sqlx::raw_sql(AssertSqlSafe(rename))
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Claim a spare copy of `template` by dropping its mark; its name, if any is left.
async fn claim_mysql(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    template: &str,
) -> Result<Option<String>, Error> {
    let mark = mysql_spare_mark(template);
    let spares: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_SCHEMA AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_NAME = ? AND LEFT(TABLE_SCHEMA, 13) = ? ORDER BY RAND()",
    )
    .bind(&mark)
    .bind(PREFIX)
    .fetch_all(&mut *conn)
    .await
    .map_err(test_error("cannot look for spare copies", server))?;
    for spare in spares.into_iter().filter(|s| plain_name(s)) {
        // Only one session can drop the mark; the others try the next.
        let claim = format!("DROP TABLE `{spare}`.`{mark}`");
        if sqlx::raw_sql(AssertSqlSafe(claim))
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            // Without the date, cleanup goes by the name's: harmless but early.
            let _ = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {MYSQL_CLAIMS} (name, claimed_at) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE claimed_at = VALUES(claimed_at)"
            )))
            .bind(&spare)
            .bind(now_secs())
            .execute(&mut *conn)
            .await;
            return Ok(Some(spare));
        }
    }
    Ok(None)
}

/// Make one spare copy of `template` in a thread of its own, unless `wanted`
/// are ready or as many are being made.
fn start_refill(
    dialect: Dialect,
    server: &str,
    template: &str,
    wanted: usize,
) -> Option<std::thread::JoinHandle<()>> {
    let (server, template) = (server.to_owned(), template.to_owned());
    let refill = move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let made = match runtime {
            Ok(runtime) => runtime.block_on(make_spare(dialect, &server, &template, wanted)),
            Err(error) => Err(Error::InvalidConfig(format!(
                "cannot start a runtime: {error}"
            ))),
        };
        if let Err(error) = made {
            eprintln!("stowage: could not make a spare copy of {template}: {error}");
        }
    };
    std::thread::Builder::new()
        .name("stowage-spare".to_owned())
        .spawn(refill)
        .ok()
}

async fn make_spare(
    dialect: Dialect,
    server: &str,
    template: &str,
    wanted: usize,
) -> Result<(), Error> {
    // Spares of any migration set left unclaimed for long go first; failing
    // that is no reason not to make this one.
    if let Err(error) = sweep(server, SPARE_LIFETIME, true).await {
        tracing::debug!(%error, "could not sweep stale spare copies");
    }
    let slots = i32::try_from(wanted).unwrap_or(i32::MAX);
    let name = new_name();
    // A slot lock per spare being made bounds them to `wanted`; closing the
    // connection releases it.
    match dialect {
        Dialect::Postgres => {
            let mut conn = maintenance_pg(server).await?;
            let mut taken = false;
            for n in 0..slots {
                taken = sqlx::query_scalar(
                    "SELECT pg_try_advisory_lock(hashtext('stowage-spare:' || $1), $2)",
                )
                .bind(template)
                .bind(n)
                .fetch_one(&mut conn)
                .await
                .map_err(test_error("cannot lock", server))?;
                if taken {
                    break;
                }
            }
            if !taken {
                return Ok(());
            }
            let ready: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname LIKE $1")
                    .bind(postgres_spare_pattern(template))
                    .fetch_one(&mut conn)
                    .await
                    .map_err(test_error("cannot count spare copies", server))?;
            if usize::try_from(ready).unwrap_or(0) >= wanted {
                return Ok(());
            }
            let spare = format!("{name}{}", postgres_spare_suffix(template));
            clone_postgres(&mut conn, server, template, &spare).await?;
            conn.close()
                .await
                .map_err(test_error("cannot disconnect", server))
        }
        _ => {
            let mut conn = maintenance_mysql(server).await?;
            let mut taken = false;
            for n in 0..slots {
                let lock: Option<i64> =
                    sqlx::query_scalar("SELECT GET_LOCK(CONCAT('stowage-spare:', ?, ':', ?), 0)")
                        .bind(template)
                        .bind(n)
                        .fetch_one(&mut conn)
                        .await
                        .map_err(test_error("cannot lock", server))?;
                taken = lock == Some(1);
                if taken {
                    break;
                }
            }
            if !taken {
                return Ok(());
            }
            let sql = format!(
                "CREATE DATABASE IF NOT EXISTS stowage_claims; \
                 CREATE TABLE IF NOT EXISTS {MYSQL_CLAIMS} \
                 (name VARCHAR(64) PRIMARY KEY, claimed_at BIGINT UNSIGNED NOT NULL)"
            );
            run!(&mut conn, sql, "cannot create the table of claims", server)?;
            let mark = mysql_spare_mark(template);
            let ready: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.TABLES \
                 WHERE TABLE_NAME = ? AND LEFT(TABLE_SCHEMA, 13) = ?",
            )
            .bind(&mark)
            .bind(PREFIX)
            .fetch_one(&mut conn)
            .await
            .map_err(test_error("cannot count spare copies", server))?;
            if usize::try_from(ready).unwrap_or(0) >= wanted {
                return Ok(());
            }
            clone_mysql(&mut conn, server, template, &name, Some(&mark)).await?;
            conn.close()
                .await
                .map_err(test_error("cannot disconnect", server))
        }
    }
}

async fn sqlite_template(name: &str, migrator: &Migrator) -> Result<(), Error> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| Error::InvalidConfig(format!("SQLite template: {what}: {e}"))
    };
    let dir = sqlite_dir();
    std::fs::create_dir_all(&dir).map_err(io("cannot create the folder"))?;
    let path = dir.join(format!("{name}.db"));
    if path.exists() {
        return Ok(());
    }
    // One process builds it under a file lock, into a temporary file that is
    // renamed into place when complete.
    let lock = std::fs::File::create(dir.join(format!("{name}.lock")))
        .map_err(io("cannot create the lock"))?;
    lock.lock().map_err(io("cannot lock"))?;
    if path.exists() {
        return Ok(());
    }
    let building = dir.join(format!("{name}.{}.building", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", building.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .map_err(test_error("cannot create the template", "sqlite"))?;
    migrator.run(&mut conn).await?;
    conn.close()
        .await
        .map_err(test_error("cannot close the template", "sqlite"))?;
    std::fs::rename(&building, &path).map_err(io("cannot move the template into place"))?;
    Ok(())
}

/// Drop the test databases (and SQLite test files) older than `older_than`
/// on `server`, such as those kept by failing tests; the number dropped.
/// Databases with open connections are in use and left alone.
///
/// # Errors
///
/// When the server cannot be reached or refuses to drop a database.
pub async fn cleanup(server: &str, older_than: Duration) -> Result<usize, Error> {
    sweep(server, older_than, false).await
}

/// How long an unclaimed spare may wait for a test before a later refill
/// drops it, so that spares of migration sets no longer in use do not pile up.
const SPARE_LIFETIME: Duration = Duration::from_secs(3600);

/// [`cleanup`], or with `spares_only` the unclaimed spares alone.
async fn sweep(server: &str, older_than: Duration, spares_only: bool) -> Result<usize, Error> {
    let cutoff = now_secs().saturating_sub(older_than.as_secs());
    let created =
        |name: &str| -> Option<u64> { name.strip_prefix(PREFIX)?.split('_').next()?.parse().ok() };
    let old = |name: &str| created(name).is_some_and(|t| t < cutoff);
    let mut dropped = 0;
    match dialect_of(server)? {
        Dialect::Sqlite => {
            let Ok(entries) = std::fs::read_dir(sqlite_dir()) else {
                return Ok(0);
            };
            if spares_only {
                return Ok(0);
            }
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if old(file.trim_end_matches(".db")) && std::fs::remove_file(entry.path()).is_ok() {
                    dropped += 1;
                }
            }
        }
        Dialect::Postgres => {
            let mut conn = maintenance_pg(server).await?;
            // Those in use are left out at once: a plain DROP would wait for them.
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT d.datname::text FROM pg_database d WHERE left(d.datname, 13) = $1 \
                 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)",
            )
            .bind(PREFIX)
            .fetch_all(&mut conn)
            .await
            .map_err(test_error("cannot list test databases", server))?;
            let spare = |name: &str| name.contains("_spare_");
            for name in names
                .iter()
                .filter(|n| old(n) && plain_name(n) && (!spares_only || spare(n)))
            {
                let drop = format!("DROP DATABASE IF EXISTS {name}");
                match sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut conn).await {
                    Ok(_) => dropped += 1,
                    // In use after all: a test has just connected to it.
                    Err(error)
                        if error
                            .as_database_error()
                            .and_then(|db| db.code())
                            .as_deref()
                            == Some("55006") => {}
                    Err(error) => {
                        return Err(test_error("cannot drop a test database", server)(error));
                    }
                }
            }
        }
        Dialect::MySql => {
            let mut conn = maintenance_mysql(server).await?;
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
                 WHERE LEFT(SCHEMA_NAME, 13) = ?",
            )
            .bind(PREFIX)
            .fetch_all(&mut conn)
            .await
            .map_err(test_error("cannot list test databases", server))?;
            // A claimed spare is as old as its claim; there may be no claims yet.
            let claims: Vec<(String, u64)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT CAST(name AS CHAR), claimed_at FROM {MYSQL_CLAIMS}"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            let marks: Vec<(String, String)> = sqlx::query_as(
                "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
                 WHERE LEFT(TABLE_SCHEMA, 13) = ? AND LEFT(TABLE_NAME, 14) = 'stowage_spare_'",
            )
            .bind(PREFIX)
            .fetch_all(&mut conn)
            .await
            .map_err(test_error("cannot list spare copies", server))?;
            for name in names.iter().filter(|n| plain_name(n)) {
                let claimed = claims.iter().find(|(c, _)| c == name).map(|(_, at)| *at);
                if !claimed.map_or_else(|| old(name), |at| at < cutoff) {
                    continue;
                }
                let mark = marks.iter().find(|(schema, _)| schema == name);
                if spares_only && mark.is_none() {
                    continue;
                }
                if let Some((_, mark)) = mark {
                    // An unclaimed spare: claim it for dropping, unless a test
                    // has just claimed it.
                    let claim = format!("DROP TABLE `{name}`.`{mark}`");
                    if sqlx::raw_sql(AssertSqlSafe(claim))
                        .execute(&mut conn)
                        .await
                        .is_err()
                    {
                        continue;
                    }
                } else {
                    let users: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?",
                    )
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(test_error("cannot list sessions", server))?;
                    if users > 0 {
                        continue;
                    }
                }
                let sql = format!("DROP DATABASE IF EXISTS {name}");
                run!(&mut conn, sql, "cannot drop a test database", server)?;
                forget_claim(&mut conn, name).await;
                dropped += 1;
            }
        }
    }
    Ok(dropped)
}

/// Forget the claim of a MySQL database that is gone (there may be none).
async fn forget_claim(conn: &mut sqlx::MySqlConnection, name: &str) {
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {MYSQL_CLAIMS} WHERE name = ?"
    )))
    .bind(name)
    .execute(conn)
    .await;
}

/// Plumbing for `#[stowage::test]`.
#[doc(hidden)]
pub mod private {
    use super::TestDb;
    use crate::{Error, Migrator};

    /// What a `#[stowage::test]` function can take.
    pub trait FromTestDb: Sized {
        fn from_test_db(db: &mut TestDb) -> impl Future<Output = Result<Self, Error>>;
    }

    impl<DB: crate::Backend> FromTestDb for sqlx::Pool<DB> {
        async fn from_test_db(db: &mut TestDb) -> Result<Self, Error> {
            db.pool().await
        }
    }

    /// The test gets the `TestDb` itself; it is dropped (or kept) by the test.
    impl FromTestDb for TestDb {
        async fn from_test_db(db: &mut TestDb) -> Result<Self, Error> {
            // The shell left behind, with no name, drops nothing.
            let name = std::mem::take(&mut db.name);
            Ok(TestDb {
                dialect: db.dialect,
                server: db.server.clone(),
                url: db.url.clone(),
                name,
                keep: false,
                created: db.created,
                refill: db.refill.take(),
            })
        }
    }

    /// What a test function may return: `()` or a `Result`.
    pub trait TestResult {
        fn failure(self) -> Option<String>;
    }

    impl TestResult for () {
        fn failure(self) -> Option<String> {
            None
        }
    }

    impl<E: std::fmt::Debug> TestResult for Result<(), E> {
        fn failure(self) -> Option<String> {
            self.err().map(|e| format!("{e:?}"))
        }
    }

    /// Run one test: a migrated database, the argument, the body. The server
    /// comes from the environment variable `server_env` when given.
    #[allow(clippy::panic)]
    pub fn run<T, F, Fut>(migrator: &Migrator, server_env: Option<&str>, test: F)
    where
        T: FromTestDb,
        F: FnOnce(T) -> Fut,
        Fut: Future,
        Fut::Output: TestResult,
    {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => panic!("stowage: cannot start a Tokio runtime for the test: {error}"),
        };
        let server = match server_env {
            Some(var) => match std::env::var(var) {
                Ok(url) if !url.trim().is_empty() => url,
                _ => panic!(
                    "stowage: {var} is not set; set it to the URL of a server this test may create databases on"
                ),
            },
            None => super::server_from_env(),
        };
        let mut db = match runtime.block_on(TestDb::on(&server, migrator)) {
            Ok(db) => db,
            Err(error) => panic!("stowage: cannot create the test database: {error}"),
        };
        let argument = match runtime.block_on(T::from_test_db(&mut db)) {
            Ok(argument) => argument,
            Err(error) => panic!(
                "stowage: cannot connect to the test database {}: {error}",
                db.name()
            ),
        };
        if let Some(failure) = runtime.block_on(test(argument)).failure() {
            db.keep();
            panic!("test failed: {failure}");
        }
        drop(runtime);
        drop(db);
    }
}
