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

/// Behind PgBouncer in transaction pooling, with sqlx's pool as an
/// application configures it (its statement cache on): the start-up check
/// of twelve replicas at once, `status` and `verify` work. stowage's own
/// statements are plain queries, no prepared statement a server connection
/// of the pooler could lack.
#[tokio::test(flavor = "multi_thread")]
async fn behind_pgbouncer_the_up_to_date_check_works() {
    let fresh = fresh(Backend::Postgres, "pgbouncer").await;
    let direct = fresh.pool().await;
    direct.run(&V2).await.unwrap();
    let url = stowage_tests::pgbouncer_url(&fresh.name);
    let replicas: Vec<_> = (0..12)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_stowage-test-app"))
                .args([url.as_str(), "v2"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for replica in replicas {
        let output = replica.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.trim() == "applied=",
            "{stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for _ in 0..5 {
        assert!(V2.run(&pool).await.unwrap().applied().is_empty());
        let status = V2.status(&pool).await.unwrap();
        assert!(status.is_up_to_date(), "{status}");
        assert!(V2.verify(&pool).await.unwrap().is_empty());
    }
}

stowage_tests::on_every_backend!(
    multi_thread: a_cancelled_run_leaves_no_lock,
    a_read_only_database_is_said_at_once,
);
