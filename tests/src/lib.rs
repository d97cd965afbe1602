//! Integration tests of stowage; the helpers they share live here.
//!
//! Database tests need real servers: `STOWAGE_TEST_PG_URL` and
//! `STOWAGE_TEST_MYSQL_URL` (`scripts/test` starts throwaway ones and sets
//! them). A missing variable fails the test with a message saying so; no
//! test is skipped.
//!
//! The README follows, so that its examples are compiled and run as doctests.
#![doc = include_str!("../../README.md")]

use sqlx::{AssertSqlSafe, Row};
use std::sync::Arc;
use stowage::testing::TestDb;

pub mod count;
pub mod native;
pub mod proxy;

/// A backend the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL, from `STOWAGE_TEST_PG_URL`.
    Postgres,
    /// MariaDB or MySQL, from `STOWAGE_TEST_MYSQL_URL`.
    MySql,
    /// SQLite, a file in a temporary folder.
    Sqlite,
}

impl Backend {
    /// Its dialect.
    pub fn dialect(self) -> stowage::Dialect {
        match self {
            Backend::Postgres => stowage::Dialect::Postgres,
            Backend::MySql => stowage::Dialect::MySql,
            Backend::Sqlite => stowage::Dialect::Sqlite,
        }
    }
}

/// Write a scenario once as `async fn name(backend: Backend)` and get a
/// `#[tokio::test]` for it in modules `postgres`, `mysql` and `sqlite`.
/// `on_every_backend!(multi_thread: a, b)` uses the multi-threaded runtime.
#[macro_export]
macro_rules! on_every_backend {
    (@ $flavor:tt $($scenario:ident),*) => {
        mod postgres { $( #[tokio::test $flavor] async fn $scenario() { super::$scenario($crate::Backend::Postgres).await } )* }
        mod mysql { $( #[tokio::test $flavor] async fn $scenario() { super::$scenario($crate::Backend::MySql).await } )* }
        mod sqlite { $( #[tokio::test $flavor] async fn $scenario() { super::$scenario($crate::Backend::Sqlite).await } )* }
    };
    (multi_thread: $($scenario:ident),* $(,)?) => {
        $crate::on_every_backend!(@ (flavor = "multi_thread") $($scenario),*);
    };
    ($($scenario:ident),* $(,)?) => {
        $crate::on_every_backend!(@ () $($scenario),*);
    };
}

/// The server URL of a backend, from its environment variable.
///
/// # Panics
///
/// When the variable is not set, with a message saying how to get a server.
pub fn server_url(backend: Backend) -> String {
    let var = match backend {
        Backend::Postgres => "STOWAGE_TEST_PG_URL",
        Backend::MySql => "STOWAGE_TEST_MYSQL_URL",
        Backend::Sqlite => return "sqlite://".to_owned(),
    };
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set. Run the tests with `scripts/test`, which starts throwaway PostgreSQL and \
             MariaDB servers (installing them with apt-get if needed), or set {var} to a server you \
             can create databases on, e.g. postgres://postgres@127.0.0.1:5432/postgres or \
             mysql://root@127.0.0.1:3306/test"
        )
    })
}

/// The URL of PgBouncer, in transaction pooling, in front of the PostgreSQL
/// server of `STOWAGE_TEST_PG_URL`, from `STOWAGE_TEST_PGBOUNCER_URL`; with
/// its database replaced by `database`.
///
/// # Panics
///
/// When the variable is not set, with a message saying how to get one.
pub fn pgbouncer_url(database: &str) -> String {
    let url = std::env::var("STOWAGE_TEST_PGBOUNCER_URL").unwrap_or_else(|_| {
        panic!(
            "STOWAGE_TEST_PGBOUNCER_URL is not set. Run the tests with `scripts/test`, which starts \
             Debian's PgBouncer (installing it with apt-get if needed) in transaction pooling in front \
             of the PostgreSQL server, or set it to such a PgBouncer, e.g. \
             postgres://postgres@127.0.0.1:6432/postgres (pool_mode = transaction)"
        )
    });
    with_database(&url, database)
}

/// The URL of a streaming standby of the PostgreSQL server of
/// `STOWAGE_TEST_PG_URL`, from `STOWAGE_TEST_PG_STANDBY_URL`; with its
/// database replaced by `database`.
///
/// # Panics
///
/// When the variable is not set, with a message saying how to get one.
pub fn pg_standby_url(database: &str) -> String {
    let url = std::env::var("STOWAGE_TEST_PG_STANDBY_URL").unwrap_or_else(|_| {
        panic!(
            "STOWAGE_TEST_PG_STANDBY_URL is not set. Run the tests with `scripts/test`, which makes a \
             streaming standby of the throwaway PostgreSQL server with pg_basebackup, or set it to a \
             hot standby of the server STOWAGE_TEST_PG_URL names"
        )
    });
    with_database(&url, database)
}

/// The URLs of the three nodes of a MariaDB Galera cluster, from
/// `STOWAGE_TEST_GALERA_URLS` (comma-separated).
///
/// # Panics
///
/// When the variable is not set, with a message saying how to get a cluster.
pub fn galera_urls() -> Vec<String> {
    let urls = std::env::var("STOWAGE_TEST_GALERA_URLS").unwrap_or_else(|_| {
        panic!(
            "STOWAGE_TEST_GALERA_URLS is not set. Run the tests with `scripts/test`, which starts a \
             three-node MariaDB Galera cluster on loopback (installing Debian's galera-4 and rsync \
             with apt-get if needed), or set it to the nodes of such a cluster, comma-separated, e.g. \
             mysql://root@127.0.0.1:3306/test,mysql://root@127.0.0.1:3307/test,mysql://root@127.0.0.1:3308/test"
        )
    });
    urls.split(',').map(str::to_owned).collect()
}

/// A fresh, empty database of its own for one test: a
/// [`stowage::testing::TestDb`], dropped when the last handle to it goes
/// (kept, and named, when the test fails).
#[derive(Debug, Clone)]
pub struct Fresh {
    /// The backend.
    pub backend: Backend,
    /// The URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
    db: Arc<TestDb>,
}

/// Replace the database name (the URL path) of a server URL.
pub fn with_database(url: &str, database: &str) -> String {
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

/// Create a fresh, empty database on a backend (`label` says what for, in
/// failure messages).
pub async fn fresh(backend: Backend, label: &str) -> Fresh {
    let db = TestDb::empty_on(&server_url(backend))
        .await
        .unwrap_or_else(|error| panic!("{label}: cannot create a test database: {error}"));
    Fresh {
        backend,
        url: db.url().to_owned(),
        name: db.name().to_owned(),
        db: Arc::new(db),
    }
}

/// A pool on a test database, for driving a scenario written once; it keeps
/// its database alive.
#[derive(Debug, Clone)]
pub struct Pool {
    kind: Kind,
    _db: Arc<TestDb>,
}

/// The pool of one of the backends.
#[derive(Debug, Clone)]
pub enum Kind {
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
    /// MySQL / MariaDB.
    MySql(sqlx::MySqlPool),
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
}

macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match &$pool.kind {
            Kind::Postgres($p) => $body,
            Kind::MySql($p) => $body,
            Kind::Sqlite($p) => $body,
        }
    };
}

impl Fresh {
    /// A pool on the fresh database.
    pub async fn pool(&self) -> Pool {
        let kind = match self.backend {
            Backend::Postgres => Kind::Postgres(sqlx::PgPool::connect(&self.url).await.unwrap()),
            Backend::MySql => Kind::MySql(sqlx::MySqlPool::connect(&self.url).await.unwrap()),
            Backend::Sqlite => Kind::Sqlite(sqlx::SqlitePool::connect(&self.url).await.unwrap()),
        };
        Pool {
            kind,
            _db: Arc::clone(&self.db),
        }
    }
}

impl Pool {
    /// The backend's own pool.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Run a migrator on this pool.
    pub async fn run(
        &self,
        migrator: &stowage::Migrator,
    ) -> Result<stowage::Report, stowage::Error> {
        on_pool!(self, p => migrator.run(p).await)
    }

    /// Run a migrator up to a version on this pool.
    pub async fn run_to(
        &self,
        migrator: &stowage::Migrator,
        version: i64,
    ) -> Result<stowage::Report, stowage::Error> {
        on_pool!(self, p => migrator.run_to(p, version).await)
    }

    /// Undo migrations on this pool.
    pub async fn undo(
        &self,
        migrator: &stowage::Migrator,
        target: stowage::Target,
    ) -> Result<stowage::Report, stowage::Error> {
        on_pool!(self, p => migrator.undo(p, target).await)
    }

    /// Stamp on this pool.
    pub async fn stamp(
        &self,
        migrator: &stowage::Migrator,
        target: stowage::Target,
    ) -> Result<stowage::Report, stowage::Error> {
        on_pool!(self, p => migrator.stamp(p, target).await)
    }

    /// Take over another tool's history on this pool.
    pub async fn adopt(
        &self,
        migrator: &stowage::Migrator,
        tool: stowage::Tool,
    ) -> Result<stowage::Report, stowage::Error> {
        on_pool!(self, p => migrator.adopt(p, tool).await)
    }

    /// Status on this pool.
    pub async fn status(
        &self,
        migrator: &stowage::Migrator,
    ) -> Result<stowage::Status, stowage::Error> {
        on_pool!(self, p => migrator.status(p).await)
    }

    /// Verify on this pool.
    pub async fn verify(
        &self,
        migrator: &stowage::Migrator,
    ) -> Result<Vec<stowage::Error>, stowage::Error> {
        on_pool!(self, p => migrator.verify(p).await)
    }

    /// Plan on this pool.
    pub async fn plan(
        &self,
        migrator: &stowage::Migrator,
        target: stowage::Target,
    ) -> Result<stowage::Plan, stowage::Error> {
        on_pool!(self, p => migrator.plan(p, target).await)
    }

    /// Repair on this pool.
    pub async fn repair(
        &self,
        migrator: &stowage::Migrator,
        action: stowage::RepairAction,
    ) -> Result<usize, stowage::Error> {
        on_pool!(self, p => migrator.repair(p, action).await)
    }

    /// The schema as stowage reads it from the catalogue ([`stowage::Migrator::dump`]).
    pub async fn dump(&self, migrator: &stowage::Migrator) -> stowage::Schema {
        on_pool!(self, p => migrator.dump(p).await)
            .unwrap_or_else(|error| panic!("cannot read the schema: {error:?}"))
    }

    /// The schema against the one `migrator` builds, made on `server`
    /// ([`stowage::Migrator::drift`]).
    pub async fn drift(&self, migrator: &stowage::Migrator, server: &str) -> stowage::Drift {
        self.try_drift(migrator, server)
            .await
            .unwrap_or_else(|error| panic!("cannot compare the schema: {error:?}"))
    }

    /// [`stowage::Migrator::drift`], its error kept.
    pub async fn try_drift(
        &self,
        migrator: &stowage::Migrator,
        server: &str,
    ) -> Result<stowage::Drift, stowage::Error> {
        on_pool!(self, p => migrator.drift(p, server).await)
    }

    /// The schema snapshot's text ([`stowage::Migrator::schema_snapshot`]).
    pub async fn schema_snapshot(&self, migrator: &stowage::Migrator) -> String {
        on_pool!(self, p => migrator.schema_snapshot(p).await)
            .unwrap_or_else(|error| panic!("cannot read the schema snapshot: {error:?}"))
    }

    /// The schema as the catalog describes it: tables, columns and indexes,
    /// one line each, sorted; the history table left out.
    pub async fn schema(&self) -> Vec<String> {
        let sql = match self.kind {
            Kind::Postgres(_) => {
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') \
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'stowage_migrations' \
                 UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'stowage_migrations' ORDER BY 1"
            }
            Kind::MySql(_) => {
                "SELECT CAST(CONCAT(table_name, '.', column_name, ' ', column_type, ' ', is_nullable, ' ', coalesce(column_default, ''), ' ', extra) AS CHAR) \
                 FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name <> 'stowage_migrations' \
                 UNION ALL SELECT CAST(CONCAT(table_name, ' index ', index_name, ' ', seq_in_index, ' ', column_name, ' ', non_unique) AS CHAR) \
                 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name <> 'stowage_migrations' ORDER BY 1"
            }
            Kind::Sqlite(_) => {
                "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master \
                 WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> 'stowage_migrations' ORDER BY 1"
            }
        };
        on_pool!(self, p => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await.unwrap())
    }

    /// Take the migration lock of the default history table on a connection
    /// of its own, as another replica would; it is held until the returned
    /// value is dropped.
    pub async fn hold_migration_lock(&self) -> Box<dyn std::any::Any + Send> {
        const POSTGRES: &str = "SELECT pg_advisory_lock(hashtextextended('stowage:' || current_database() || ':' || '.stowage_migrations', 0))";
        const MYSQL: &str = "SELECT GET_LOCK(CONCAT('stowage:', LEFT(SHA1(CONCAT(DATABASE(), ':', '.stowage_migrations')), 40)), 0)";
        match &self.kind {
            Kind::Postgres(p) => {
                let mut conn = p.acquire().await.unwrap();
                sqlx::raw_sql(POSTGRES).execute(&mut *conn).await.unwrap();
                Box::new(conn)
            }
            Kind::MySql(p) => {
                let mut conn = p.acquire().await.unwrap();
                sqlx::raw_sql(MYSQL).execute(&mut *conn).await.unwrap();
                Box::new(conn)
            }
            Kind::Sqlite(p) => {
                let mut conn = p.acquire().await.unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                Box::new(conn)
            }
        }
    }

    /// Execute a script.
    pub async fn execute(&self, sql: &str) {
        on_pool!(self, p => { sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(p).await.unwrap(); })
    }

    /// The first column of the first row, as an `i64`.
    pub async fn i64(&self, sql: &str) -> i64 {
        on_pool!(self, p => sqlx::query(AssertSqlSafe(sql.to_owned())).fetch_one(p).await.unwrap().get::<i64, _>(0))
    }

    /// The first column of every row, as text.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        on_pool!(self, p => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_all(p).await.unwrap())
    }

    /// The user tables of the database, sorted.
    pub async fn tables(&self) -> Vec<String> {
        let sql = match self.kind {
            Kind::Postgres(_) => {
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            }
            Kind::MySql(_) => {
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1"
            }
            Kind::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
            }
        };
        on_pool!(self, p => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await.unwrap())
    }

    /// The history table as `(version, state, failed_statement)`.
    pub async fn history(&self) -> Vec<(i64, String, Option<i64>)> {
        let sql =
            "SELECT version, state, failed_statement FROM stowage_migrations ORDER BY version";
        on_pool!(self, p => sqlx::query_as::<_, (i64, String, Option<i64>)>(sql).fetch_all(p).await.unwrap())
    }

    /// The history table's `error` column of a version.
    pub async fn history_error(&self, version: i64) -> Option<String> {
        let sql = format!("SELECT error FROM stowage_migrations WHERE version = {version}");
        on_pool!(self, p => sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql)).fetch_one(p).await.unwrap())
    }

    /// Close the pool.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await);
    }
}

/// The versions a report applied, in order.
pub fn versions(report: &stowage::Report) -> Vec<i64> {
    report.applied().iter().map(|a| a.version).collect()
}

/// A local port with nothing listening on it (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The workspace's folder.
pub fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The README's fenced block that starts with the line `first`: what a
/// test builds or runs as a user would paste it.
pub fn readme_block(first: &str) -> String {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let start = readme
        .find(&format!("\n{first}\n"))
        .unwrap_or_else(|| panic!("the README has no block starting with {first}"));
    let block = &readme[start + 1..];
    block[..block.find("\n```").unwrap()].to_owned()
}

/// Run `command` with stdout and stderr into one pipe, as a terminal shows
/// them: its exit code and what it wrote, in the order written.
pub fn interleaved(command: &mut std::process::Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = command
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    // The child holds the only writing ends now (the builder's are
    // replaced): reading ends when it does.
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut output = String::new();
    std::io::Read::read_to_string(&mut { reader }, &mut output).unwrap();
    (child.wait().unwrap().code(), output)
}

/// A folder read at run time as `include_dir` would embed it (its
/// contents leaked: for tests and tools that read a few folders), for
/// [`stowage::Migrator::from_dir`].
pub fn dir_at(path: &std::path::Path) -> std::io::Result<include_dir::Dir<'static>> {
    fn leak(text: String) -> &'static str {
        Box::leak(text.into_boxed_str())
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = leak(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type()?.is_dir() {
            entries.push(include_dir::DirEntry::Dir(dir_named(name, &entry.path())?));
        } else {
            let bytes: &'static [u8] = Box::leak(std::fs::read(entry.path())?.into_boxed_slice());
            entries.push(include_dir::DirEntry::File(include_dir::File::new(
                name, bytes,
            )));
        }
    }
    Ok(include_dir::Dir::new(
        "",
        Box::leak(entries.into_boxed_slice()),
    ))
}

fn dir_named(
    name: &'static str,
    path: &std::path::Path,
) -> std::io::Result<include_dir::Dir<'static>> {
    let dir = dir_at(path)?;
    Ok(include_dir::Dir::new(name, dir.entries()))
}

/// A folder of one file, `name`, holding `text` (see [`dir_at`]).
pub fn dir_of(name: &str, text: &str) -> include_dir::Dir<'static> {
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let bytes: &'static [u8] = Box::leak(text.as_bytes().to_vec().into_boxed_slice());
    let entries = Box::leak(Box::new([include_dir::DirEntry::File(
        include_dir::File::new(name, bytes),
    )]));
    include_dir::Dir::new("", entries)
}
