//! Deployments: what a start-up deadline, a cluster or a pooler does to a run.

use std::time::Duration;
use stowage::{Error, Migrator};
use stowage_tests::{Backend, fresh};

/// A table, then a migration that takes about four seconds.
static SLOW: Migrator = stowage::embed_migrations!("fixtures/apply/slow");

/// A run cancelled by a deadline (its future dropped while a migration
/// runs) leaves no lock on the pool's connections: the next run on the same
/// pool gets the lock once the server has ended the cancelled session's
/// statement (the migration's own few seconds), and applies.
async fn a_cancelled_run_leaves_no_lock(backend: Backend) {
    let db = fresh(backend, "cancelled").await.pool().await;
    let deadline = tokio::time::timeout(Duration::from_millis(500), db.run(&SLOW)).await;
    assert!(deadline.is_err(), "the run outlived its deadline");

    let again = SLOW.clone().with_lock_timeout(Duration::from_secs(60));
    match db.run(&again).await {
        Ok(_) => {
            let recorded: Vec<i64> = db.history().await.iter().map(|r| r.0).collect();
            assert_eq!(recorded, [1, 2]);
        }
        // MySQL's DDL commits by itself: the cancelled migration may have
        // been cut short after a statement, and says so.
        Err(Error::FailedMigration { version: 2, .. }) if backend == Backend::MySql => {}
        Err(error) => panic!("{error}"),
    }
}

static V1: Migrator = stowage::embed_migrations!("fixtures/apply/v1");
static V2: Migrator = stowage::embed_migrations!("fixtures/apply/v2");

/// On a database that takes no writes (PostgreSQL's
/// `default_transaction_read_only`, a read-only MySQL session, a SQLite file
/// opened read-only): an up-to-date run and `status` work; a run with work
/// to do fails at once, saying so, and changes nothing.
async fn a_read_only_database_is_said_at_once(backend: Backend) {
    let fresh = fresh(backend, "read only").await;
    let db = fresh.pool().await;
    let applied = db.run(&V1).await.unwrap().applied().len();
    macro_rules! check {
        ($pool:expr) => {{
            let pool = $pool;
            assert!(V1.run(&pool).await.unwrap().applied().is_empty());
            assert_eq!(V1.status(&pool).await.unwrap().migrations.len(), applied);
            let error = V2.run(&pool).await.unwrap_err();
            assert!(matches!(error, Error::ReadOnly { .. }), "{error:?}");
            let message = error.to_string();
            assert!(message.contains("nothing was changed"), "{message}");
            message
        }};
    }
    let message = match backend {
        Backend::Postgres => {
            db.execute(&format!(
                "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
                fresh.name
            ))
            .await;
            check!(sqlx::PgPool::connect(&fresh.url).await.unwrap())
        }
        Backend::MySql => check!(
            sqlx::mysql::MySqlPoolOptions::new()
                .after_connect(|conn, _| Box::pin(async move {
                    sqlx::raw_sql("SET SESSION TRANSACTION READ ONLY")
                        .execute(conn)
                        .await
                        .map(|_| ())
                }))
                .connect(&fresh.url)
                .await
                .unwrap()
        ),
        Backend::Sqlite => {
            let url = format!("{}?mode=ro", fresh.url);
            check!(sqlx::SqlitePool::connect(&url).await.unwrap())
        }
    };
    assert!(message.contains("read-only"), "{message}");
    let recorded = db.history().await.len();
    assert_eq!(recorded, applied, "nothing was recorded");
}

/// A pooled connection the server dropped (a restart, an idle timeout) is
/// not a failed run: the run goes on, on a new connection.
#[tokio::test]
async fn a_connection_the_server_dropped_is_replaced() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let fresh = fresh(backend, "dropped").await;
        let db = fresh.pool().await;
        db.run(&V1).await.unwrap();
        macro_rules! drop_and_run {
            ($options:expr, $id:literal, $kill:literal) => {{
                // One connection, handed out without a test first.
                let pool = $options
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect(&fresh.url)
                    .await
                    .unwrap();
                let id: i64 = sqlx::query_scalar($id).fetch_one(&pool).await.unwrap();
                db.execute(&format!($kill, id)).await;
                assert!(
                    V1.run(&pool).await.unwrap().applied().is_empty(),
                    "{backend:?}"
                );
                assert_eq!(
                    V2.run(&pool).await.unwrap().applied().len(),
                    1,
                    "{backend:?}"
                );
            }};
        }
        match backend {
            Backend::Postgres => drop_and_run!(
                sqlx::postgres::PgPoolOptions::new(),
                "SELECT pg_backend_pid()::bigint",
                "SELECT pg_terminate_backend({})"
            ),
            _ => drop_and_run!(
                sqlx::mysql::MySqlPoolOptions::new(),
                "SELECT CAST(CONNECTION_ID() AS SIGNED)",
                "KILL {}"
            ),
        }
    }
}

/// A PostgreSQL hot standby, streaming from its primary: the up-to-date
/// check and `status` answer there, through the library and the binary's
/// subcommands; a run with work to do says at once that the server is a
/// standby.
#[tokio::test]
async fn a_postgres_standby_answers_but_does_not_migrate() {
    let fresh = fresh(Backend::Postgres, "standby").await;
    let applied = fresh.pool().await.run(&V1).await.unwrap().applied().len();
    let url = stowage_tests::pg_standby_url(&fresh.name);
    // Replication brings the database and its history over: wait for it.
    let started = std::time::Instant::now();
    let standby = loop {
        if let Ok(pool) = sqlx::PgPool::connect(&url).await {
            let recorded: Result<i64, _> =
                sqlx::query_scalar("SELECT COUNT(*) FROM stowage_migrations")
                    .fetch_one(&pool)
                    .await;
            if recorded.is_ok_and(|n| n as usize == applied) {
                break pool;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the standby did not replay the migrations"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(V1.run(&standby).await.unwrap().applied().is_empty());
    assert!(V1.status(&standby).await.unwrap().is_up_to_date());
    let error = V2.run(&standby).await.unwrap_err();
    assert!(
        matches!(&error, Error::ReadOnly { reason } if reason.contains("standby")),
        "{error:?}"
    );
    // The binary's subcommands on the standby: `status`, `check` and an
    // up-to-date `up` answer; `up` with work to do says the server is a
    // standby, and changes nothing.
    for args in [&["status"][..], &["check"], &["up"]] {
        let (code, stdout, stderr) = cli(&url, "v1", args);
        assert_eq!(code, 0, "{args:?}: {stdout} {stderr}");
    }
    let (code, stdout, stderr) = cli(&url, "v2", &["up"]);
    assert_eq!(code, 1, "{stdout} {stderr}");
    assert!(
        stderr.contains("cannot apply migrations: it is a standby")
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    let (code, stdout, stderr) = cli(&url, "v2", &["check"]);
    assert_eq!(code, 4, "pending on the standby: {stdout} {stderr}");
    let recorded = fresh.pool().await.history().await.len();
    assert_eq!(recorded, applied, "nothing was recorded");
}

/// Behind PgBouncer in transaction pooling, with sqlx's pool as an
/// application configures it (its statement cache on) and through the
/// binary's `migrate` subcommands (`AnyPool`): the start-up check of twelve
/// replicas at once, `status`, `verify` and `check` work. stowage's own
/// statements are plain queries, no prepared statement a server connection
/// of the pooler could lack.
#[tokio::test(flavor = "multi_thread")]
async fn behind_pgbouncer_the_up_to_date_check_works() {
    let fresh = fresh(Backend::Postgres, "pgbouncer").await;
    let direct = fresh.pool().await;
    direct.run(&V2).await.unwrap();
    let url = stowage_tests::pgbouncer_url(&fresh.name);
    for path in PATHS {
        for applied in replicas_at_once(path, std::slice::from_ref(&url), "v2", 12) {
            assert_eq!(applied, "applied=", "{path:?}");
        }
    }
    // The operator's read-only subcommands, through `AnyPool`, several times
    // over the pooler's four server connections.
    for _ in 0..3 {
        for (args, expected) in [
            (&["status"][..], "postgres database at version 4; 0 pending"),
            (&["verify"][..], ""),
            (&["check"][..], "ok: the postgres database is at version 4"),
        ] {
            let (code, stdout, stderr) = cli(&url, "v2", args);
            assert_eq!(code, 0, "{args:?}: {stdout} {stderr}");
            assert!(stdout.contains(expected), "{args:?}: {stdout} {stderr}");
        }
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for _ in 0..5 {
        assert!(V2.run(&pool).await.unwrap().applied().is_empty());
        let status = V2.status(&pool).await.unwrap();
        assert!(status.is_up_to_date(), "{status}");
        assert!(V2.verify(&pool).await.unwrap().is_empty());
    }
}

/// The two ways a service applies its migrations: the library on a typed
/// pool (`stowage-test-app`, `Migrator::run` on a `PgPool` or `MySqlPool`),
/// and the application binary's `migrate up` (`stowage-test-cli`, through
/// `AnyPool`), which the image and the Compose job run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Path {
    Library,
    Cli,
}

const PATHS: [Path; 2] = [Path::Library, Path::Cli];

/// One process applying `set` to `url` through `path`, lock timeout
/// `timeout` seconds, its output piped.
fn replica(path: Path, url: &str, set: &str, timeout: u64) -> std::process::Command {
    let mut command = match path {
        Path::Library => {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stowage-test-app"));
            command.args([url, set, &timeout.to_string()]);
            command
        }
        Path::Cli => {
            let set = if set == "slow" { "apply-slow" } else { set };
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stowage-test-cli"));
            command
                .args(["migrate", "up", "--json"])
                .env("DATABASE_URL", url)
                .env("STOWAGE_TEST_SET", set)
                .env("STOWAGE_TEST_LOCK_TIMEOUT", timeout.to_string());
            command
        }
    };
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// What a finished replica applied, as `applied=<versions>` whichever its
/// path (the CLI's `--json` lists them under `applied`).
fn applied(path: Path, output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match path {
        Path::Library => stdout,
        Path::Cli => {
            let json: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr))
            });
            let versions: Vec<String> = json["applied"]
                .as_array()
                .map(|list| list.iter().map(|m| m["version"].to_string()).collect())
                .unwrap_or_default();
            format!("applied={}", versions.join(","))
        }
    }
}

/// `count` replicas applying `set` through `path`, started at once, each on
/// the next of `urls`: what each applied (`applied=<versions>`), sorted;
/// each must succeed.
fn replicas_at_once(path: Path, urls: &[String], set: &str, count: usize) -> Vec<String> {
    let replicas: Vec<_> = (0..count)
        .map(|i| {
            replica(path, &urls[i % urls.len()], set, 60)
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = replicas
        .into_iter()
        .map(|replica| {
            let output = replica.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{path:?}: {} {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            applied(path, &output)
        })
        .collect::<Vec<_>>();
    applied.sort();
    applied
}

/// The application binary's `migrate <args>` on `url` with `set`: its exit
/// code, stdout and stderr.
fn cli(url: &str, set: &str, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stowage-test-cli"))
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", url)
        .env("STOWAGE_TEST_SET", set)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Twelve replicas starting at once through PgBouncer in transaction
/// pooling (a pool of 4) on a fresh database, through the library and
/// through the binary's `migrate up`, with the default lock (an
/// advisory lock held by a transaction, which keeps one server connection
/// of the pooler) and with `Lock::Lease`: one applies every migration, the
/// others find them applied; none fails.
#[tokio::test(flavor = "multi_thread")]
async fn behind_pgbouncer_replicas_apply_each_migration_once() {
    for (path, set) in PATHS
        .into_iter()
        .flat_map(|path| ["v2", "v2-lease"].map(|set| (path, set)))
    {
        let fresh = fresh(Backend::Postgres, &format!("pgbouncer {set} {path:?}")).await;
        let url = stowage_tests::pgbouncer_url(&fresh.name);
        let mut expected = vec!["applied=".to_owned(); 11];
        expected.push("applied=1,2,3,4".to_owned());
        assert_eq!(
            replicas_at_once(path, std::slice::from_ref(&url), set, 12),
            expected,
            "{set} {path:?}"
        );
        let direct = fresh.pool().await;
        assert_eq!(direct.history().await.len(), 4, "{set}");
        let leases = direct.tables().await;
        if set == "v2-lease" {
            assert_eq!(
                direct
                    .i64("SELECT COUNT(*) FROM stowage_migrations_lock")
                    .await,
                0,
                "the lease was released"
            );
        } else {
            assert!(
                !leases.contains(&"stowage_migrations_lock".to_owned()),
                "the default lock needs no table: {leases:?}"
            );
        }
    }
}

/// A holder SIGKILLed in the middle of a migration, directly and through
/// PgBouncer, through the library and through the binary's `migrate up`: the server goes on with the migration's statement (it notices
/// a closed client only when it next writes to it) while the connection
/// that held the lock is gone. The next process waits for that statement,
/// not for a lock timeout, and then finds the migration applied or rolled
/// back, never half-done or run twice at once. Then, with the statement
/// ended on the server too (as a crash of the host does), the lock is free
/// at once.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_killed_holder_leaves_no_lock() {
    let sleeping = "FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND state = 'active' \
         AND datname = current_database() AND pid <> pg_backend_pid()";
    for (label, end_statement) in [("left", false), ("ended", true)] {
        let fresh = fresh(Backend::Postgres, &format!("killed {label}")).await;
        let direct = fresh.pool().await;
        let urls = [fresh.url.clone(), stowage_tests::pgbouncer_url(&fresh.name)];
        for (path, url) in PATHS
            .into_iter()
            .flat_map(|path| urls.clone().map(|url| (path, url)))
        {
            direct
                .execute(
                    "DROP TABLE IF EXISTS stowage_migrations, users, slow_started, slow_finished",
                )
                .await;
            let app = |timeout| replica(path, &url, "slow", timeout).spawn().unwrap();
            let mut holder = app(60);
            let started = std::time::Instant::now();
            while direct.i64(&format!("SELECT COUNT(*) {sleeping}")).await == 0 {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the slow migration never started"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            holder.kill().unwrap(); // SIGKILL
            assert!(!holder.wait().unwrap().success());
            if end_statement {
                direct
                    .execute(&format!("SELECT pg_terminate_backend(pid) {sleeping}"))
                    .await;
            }
            let rerun = app(30).wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&rerun.stderr);
            let at = format!("{label} {url} {path:?}");
            assert!(rerun.status.success(), "{at}: {stderr}");
            let applied = applied(path, &rerun);
            if end_statement {
                assert_eq!(applied, "applied=2", "{at}: {stderr}");
            } else {
                assert!(
                    ["applied=", "applied=2"].contains(&applied.as_str()),
                    "{at}: {applied} {stderr}"
                );
                // The binary says at once what it waits for: the killed
                // run's migration, its server process and its first line.
                if path == Path::Cli {
                    assert!(
                        stderr.contains(
                            "waiting for the migration lock, held by a migration still running \
                             on the server (server process "
                        ) && stderr.contains(": CREATE TABLE slow_started (id INTEGER);)"),
                        "{at}: {stderr}"
                    );
                }
            }
            let recorded: Vec<i64> = direct.history().await.iter().map(|r| r.0).collect();
            assert_eq!(recorded, [1, 2], "{at}");
            assert!(
                direct.tables().await.contains(&"slow_finished".to_owned()),
                "{at}"
            );
        }
    }
}

const APPLIED: &str = "SELECT COUNT(*) FROM stowage_migrations WHERE state = 'applied'";
const LEASES: &str = "SELECT COUNT(*) FROM stowage_migrations_lock";

/// The one number `sql` selects.
async fn count(pool: &sqlx::MySqlPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A database of its own on the Galera cluster for one test, made through
/// the first node: the URL of each node to it.
async fn galera_database(label: &str) -> Vec<String> {
    let nodes = stowage_tests::galera_urls();
    let name = format!("stowage_galera_{label}_{}", std::process::id());
    let admin = sqlx::MySqlPool::connect(&nodes[0]).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let urls: Vec<String> = nodes
        .iter()
        .map(|url| stowage_tests::with_database(url, &name))
        .collect();
    // Each node applies the `CREATE DATABASE` in its turn: wait for it.
    for url in &urls {
        let started = std::time::Instant::now();
        while sqlx::MySqlPool::connect(url).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{url} has not seen the new database"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    urls
}

/// Sixteen replicas through the library, and twelve through the binary's
/// `migrate up`, start at once on a Galera cluster, spread over its nodes,
/// on a fresh database: one applies every migration, the others find them
/// applied; none fails. (`GET_LOCK` holds on one node only: the lease row
/// holds across the cluster.)
#[tokio::test(flavor = "multi_thread")]
async fn galera_replicas_at_once_apply_each_migration_once() {
    for (path, replicas) in [(Path::Library, 16), (Path::Cli, 12)] {
        let nodes = galera_database(&format!("replicas_{path:?}")).await;
        let applied = replicas_at_once(path, &nodes, "v2", replicas);
        let mut expected = vec!["applied=".to_owned(); replicas - 1];
        expected.push("applied=1,2,3,4".to_owned());
        assert_eq!(applied, expected, "{path:?}");
        // Every node has the history, and no lease is left.
        for url in &nodes {
            let pool = sqlx::MySqlPool::connect(url).await.unwrap();
            assert_eq!(count(&pool, APPLIED).await, 4, "{url} {path:?}");
            assert_eq!(count(&pool, LEASES).await, 0, "{url} {path:?}");
        }
    }
}

/// A lease whose holder stopped renewing it is taken over once it expires;
/// a live one makes the run wait, then time out naming its holder.
#[tokio::test(flavor = "multi_thread")]
async fn galera_a_stale_lease_is_taken_over_and_a_live_one_waited_for() {
    let nodes = galera_database("lease").await;
    let second = sqlx::MySqlPool::connect(&nodes[1]).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE stowage_migrations_lock (id INT PRIMARY KEY, holder VARCHAR(255) NOT NULL, \
         expires_at DATETIME(6) NOT NULL) ENGINE = InnoDB; \
         INSERT INTO stowage_migrations_lock VALUES (1, 'a crashed replica', NOW(6) - INTERVAL 1 SECOND)",
    )
    .execute(&second)
    .await
    .unwrap();
    let first = sqlx::MySqlPool::connect(&nodes[0]).await.unwrap();
    assert_eq!(V1.run(&first).await.unwrap().applied().len(), 3);

    // On the node that released the lease, which has seen its own delete.
    sqlx::raw_sql(
        "INSERT INTO stowage_migrations_lock VALUES (1, 'a live replica', NOW(6) + INTERVAL 60 SECOND)",
    )
    .execute(&first)
    .await
    .unwrap();
    let third = sqlx::MySqlPool::connect(&nodes[2]).await.unwrap();
    let waiting = V2.clone().with_lock_timeout(Duration::from_secs(1));
    let error = waiting.run(&third).await.unwrap_err();
    assert!(
        matches!(&error, Error::LockTimeout { holder: Some(holder), .. } if holder.starts_with("a live replica")),
        "{error:?}"
    );
    let recorded = count(&third, "SELECT COUNT(*) FROM stowage_migrations").await;
    assert_eq!(recorded, 3, "nothing applied while the lease was held");
}

/// On the cluster too, a run cancelled while a migration runs leaves its
/// lease only while its statement still runs on the server: the next run
/// gets the lock and applies.
#[tokio::test(flavor = "multi_thread")]
async fn galera_a_cancelled_run_leaves_no_lease() {
    let nodes = galera_database("cancelled").await;
    let pool = sqlx::MySqlPool::connect(&nodes[0]).await.unwrap();
    let deadline = tokio::time::timeout(Duration::from_millis(500), SLOW.run(&pool)).await;
    assert!(deadline.is_err(), "the run outlived its deadline");
    let other = sqlx::MySqlPool::connect(&nodes[1]).await.unwrap();
    let again = SLOW.clone().with_lock_timeout(Duration::from_secs(60));
    match again.run(&other).await {
        Ok(_) => {}
        // The cancelled migration may have been cut short after a
        // statement, and says so.
        Err(Error::FailedMigration { version: 2, .. }) => {}
        Err(error) => panic!("{error}"),
    }
}

/// A holder killed (SIGKILL) on one node while its migration runs: its
/// lease stays (nothing releases it), is no longer renewed, and is taken
/// over once expired (30 s) by a run on another node. That run then finds
/// the migration the server finished after the kill (up to date, without
/// the lock), or, cut short, one that failed in an earlier run, which it
/// says and does not apply again (MySQL's DDL is not transactional).
#[tokio::test(flavor = "multi_thread")]
async fn galera_a_killed_holder_is_recovered() {
    for path in PATHS {
        galera_killed_holder(path).await;
    }
}

async fn galera_killed_holder(path: Path) {
    let nodes = galera_database(&format!("killed_{path:?}")).await;
    let first = sqlx::MySqlPool::connect(&nodes[0]).await.unwrap();
    let app = |url: &str| replica(path, url, "slow", 90).spawn().unwrap();
    let mut holder = app(&nodes[0]);
    let started = std::time::Instant::now();
    let sleeping = "SELECT COUNT(*) FROM information_schema.processlist \
                    WHERE info LIKE '%SLEEP(4)%' AND db = DATABASE() AND id <> CONNECTION_ID()";
    while count(&first, sleeping).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slow migration never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holder.kill().unwrap(); // SIGKILL
    assert!(!holder.wait().unwrap().success());
    let second = sqlx::MySqlPool::connect(&nodes[1]).await.unwrap();
    assert_eq!(
        count(&second, LEASES).await,
        1,
        "the killed holder's lease is still there"
    );

    let rerun = app(&nodes[1]).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    if rerun.status.success() {
        assert_eq!(applied(path, &rerun), "applied=", "{stderr}");
        assert_eq!(count(&second, APPLIED).await, 2, "{stderr}");
    } else {
        assert!(
            stderr.contains("migration 2") && stderr.contains("failed in an earlier run"),
            "{stdout} {stderr}"
        );
        // It took the lock to read the history, and released it.
        assert_eq!(count(&second, LEASES).await, 0, "{stderr}");
    }
}

/// A deadlock or serialization failure met by one of stowage's own
/// statements (a trigger on the history table raises one, once) is retried,
/// not reported; the same error from a migration's own SQL is the
/// migration's failure. SQLite has no such error.
#[tokio::test(flavor = "multi_thread")]
async fn a_transient_error_in_stowages_own_statements_is_retried() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let db = fresh(backend, "transient").await.pool().await;
        db.run(&V1).await.unwrap();
        let (setup, failures) = match backend {
            // A sequence is not rolled back with the failed statement.
            Backend::Postgres => (
                "CREATE SEQUENCE fail_once; \
                 CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF nextval('fail_once') = 1 THEN RAISE EXCEPTION 'simulated' \
                 USING ERRCODE = 'serialization_failure'; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER fail_once BEFORE INSERT ON stowage_migrations \
                 FOR EACH ROW EXECUTE FUNCTION fail_once()",
                "SELECT last_value FROM fail_once",
            ),
            // Nor is a row of a table that has no transactions.
            _ => (
                "CREATE TABLE fail_once (n INT) ENGINE = MyISAM; \
                 CREATE TRIGGER fail_once BEFORE INSERT ON stowage_migrations FOR EACH ROW \
                 BEGIN INSERT INTO fail_once VALUES (1); \
                 IF (SELECT COUNT(*) FROM fail_once) = 1 THEN \
                 SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = 'simulated deadlock'; END IF; END",
                "SELECT COUNT(*) FROM fail_once",
            ),
        };
        db.execute(setup).await;
        let report = db
            .stamp(&V2, stowage::Target::Head)
            .await
            .unwrap_or_else(|error| panic!("{backend:?}: {error}"));
        assert_eq!(stowage_tests::versions(&report), [4], "{backend:?}");
        let recorded: Vec<i64> = db.history().await.iter().map(|r| r.0).collect();
        assert_eq!(recorded, [1, 2, 3, 4], "{backend:?}");
        // The insert failed once, then was tried again.
        assert_eq!(db.i64(failures).await, 2, "{backend:?}");
    }
}

/// A hook that cuts the proxy's connections the first time `event` comes
/// for `version`.
fn cut_once(
    proxy: std::sync::Arc<stowage_tests::proxy::Proxy>,
    event: stowage::Event,
    version: i64,
) -> impl for<'c> Fn(stowage::HookContext<'c>) -> stowage::HookFuture<'c> + Send + Sync + 'static {
    let done = std::sync::atomic::AtomicBool::new(false);
    move |ctx| {
        if ctx.event() == event
            && ctx.migration().map(|m| m.version()) == Some(version)
            && !done.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            proxy.cut();
        }
        Box::pin(async { Ok(()) })
    }
}

/// A connection lost under the lock (the network between the service and
/// the server fails, here a proxy cutting every connection) is not a failed
/// run: the run starts again from the lock on a new connection and applies
/// the rest, each migration once. Cut twice: before migration 2 starts,
/// and after migration 3 ended, before 4.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_lost_under_the_lock_starts_the_run_again() {
    use std::sync::Arc;
    use stowage::Event;
    use stowage_tests::proxy::{Proxy, host_port};
    for backend in [Backend::Postgres, Backend::MySql] {
        let fresh = fresh(backend, "lost connection").await;
        let proxy = Arc::new(Proxy::start(host_port(&fresh.url)).await);
        let cut_at = |event: Event, version: i64| cut_once(Arc::clone(&proxy), event, version);
        let cutting = V2
            .clone()
            .on(
                Event::BeforeEachMigrate,
                cut_at(Event::BeforeEachMigrate, 2),
            )
            .on(Event::AfterEachMigrate, cut_at(Event::AfterEachMigrate, 3));
        let url = proxy.url(&fresh.url);
        macro_rules! run_cut {
            ($pool:ty) => {{
                let pool = <$pool>::connect(&url).await.unwrap();
                let report = cutting.run(&pool).await;
                let up_to_date = V2.run(&pool).await.map(|r| r.applied().is_empty());
                (report, up_to_date)
            }};
        }
        let (report, up_to_date) = match backend {
            Backend::Postgres => run_cut!(sqlx::PgPool),
            _ => run_cut!(sqlx::MySqlPool),
        };
        let report = report.unwrap_or_else(|error| panic!("{backend:?}: {error}"));
        assert_eq!(
            stowage_tests::versions(&report),
            [1, 2, 3, 4],
            "{backend:?}"
        );
        let db = fresh.pool().await;
        let recorded: Vec<i64> = db.history().await.iter().map(|r| r.0).collect();
        assert_eq!(recorded, [1, 2, 3, 4], "{backend:?}");
        assert!(up_to_date.unwrap(), "{backend:?}");
    }
}

stowage_tests::on_every_backend!(
    multi_thread: a_cancelled_run_leaves_no_lock,
    a_read_only_database_is_said_at_once,
);

/// The binary's `migrate up` whose connections are all cut (a proxy between
/// it and the server) while its slow migration runs: the run starts again on
/// a new connection, waits for what the lost one left running, and ends
/// with each migration applied once; on MySQL, whose migration ran
/// statement by statement, the cut one may instead be reported as failed,
/// as after a crash, and is not run again.
#[tokio::test(flavor = "multi_thread")]
async fn the_binarys_up_cut_by_a_lost_connection_recovers() {
    use stowage_tests::proxy::{Proxy, host_port};
    for backend in [Backend::Postgres, Backend::MySql] {
        let fresh = fresh(backend, "cli lost connection").await;
        let db = fresh.pool().await;
        let proxy = Proxy::start(host_port(&fresh.url)).await;
        let job = replica(Path::Cli, &proxy.url(&fresh.url), "slow", 60)
            .spawn()
            .unwrap();
        let running = match backend {
            Backend::Postgres => {
                "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' \
                 AND state = 'active' AND datname = current_database() AND pid <> pg_backend_pid()"
            }
            _ => {
                "SELECT COUNT(*) FROM information_schema.processlist \
                 WHERE info LIKE '%SLEEP(4)%' AND db = DATABASE() AND id <> CONNECTION_ID()"
            }
        };
        let started = std::time::Instant::now();
        while db.i64(running).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{backend:?}: the slow migration never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy.cut();
        let output = tokio::task::spawn_blocking(move || job.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let history = db.history().await;
        let recorded: Vec<i64> = history.iter().map(|r| r.0).collect();
        assert_eq!(recorded, [1, 2], "{backend:?}: {stderr}");
        if output.status.success() {
            assert!(
                history.iter().all(|row| row.1 == "applied"),
                "{backend:?}: {history:?}"
            );
            assert!(db.tables().await.contains(&"slow_finished".to_owned()));
        } else {
            assert_eq!(backend, Backend::MySql, "{stderr}");
            assert_eq!(output.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("migration 2"), "{stderr}");
            assert_eq!(history[1].1, "failed", "{history:?}");
        }
    }
}
