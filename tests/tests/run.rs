//! `Migrator::run` on real PostgreSQL, MariaDB and SQLite databases: each
//! scenario is written once and runs on every backend.

use std::time::Duration;
use stowage::{Error, Migrator, Policy};
use stowage_tests::{Backend, fresh, versions};

static V1: Migrator = stowage::embed_migrations!("fixtures/apply/v1");
static V2: Migrator = stowage::embed_migrations!("fixtures/apply/v2");
static MODIFIED: Migrator = stowage::embed_migrations!("fixtures/apply/modified");
static GAP: Migrator = stowage::embed_migrations!("fixtures/apply/gap");
static FAIL: Migrator = stowage::embed_migrations!("fixtures/apply/fail");
static TRIGGER: Migrator = stowage::embed_migrations!("fixtures/apply/trigger");

fn applied(history: &[(i64, String, Option<i64>)]) -> Vec<i64> {
    history
        .iter()
        .filter(|(_, state, _)| state == "applied")
        .map(|(v, _, _)| *v)
        .collect()
}

async fn fresh_apply_then_no_op(backend: Backend) {
    let db = fresh(backend, "apply").await.pool().await;
    let report = db.run(&V1).await.unwrap();
    assert_eq!(versions(&report), [1, 2, 3]);
    assert_eq!(report.head(), Some(3));
    assert!(
        report.to_string().contains("applied 3 migrations"),
        "{report}"
    );
    assert_eq!(db.tables().await, ["posts", "stowage_migrations", "users"]);
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM users WHERE name = 'bob; the builder'")
            .await,
        1
    );
    assert_eq!(applied(&db.history().await), [1, 2, 3]);

    let again = db.run(&V1).await.unwrap();
    assert!(again.applied().is_empty());
    assert_eq!(again.head(), Some(3));
    assert!(
        again.to_string().contains("up to date at version 3"),
        "{again}"
    );
    assert_eq!(db.history().await.len(), 3);
}

async fn a_new_migration_applies_alone(backend: Backend) {
    let db = fresh(backend, "new").await.pool().await;
    db.run(&V1).await.unwrap();
    let report = db.run(&V2).await.unwrap();
    assert_eq!(versions(&report), [4]);
    assert_eq!(applied(&db.history().await), [1, 2, 3, 4]);
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM users").await,
        2,
        "the seed ran once"
    );
}

async fn run_to_stops_at_the_version(backend: Backend) {
    let db = fresh(backend, "run_to").await.pool().await;
    assert_eq!(versions(&db.run_to(&V2, 2).await.unwrap()), [1, 2]);
    assert_eq!(db.tables().await, ["posts", "stowage_migrations", "users"]);
    assert_eq!(versions(&db.run(&V2).await.unwrap()), [3, 4]);
}

async fn modified_checksum_is_refused(backend: Backend) {
    let db = fresh(backend, "modified").await.pool().await;
    db.run(&V1).await.unwrap();
    let before = (db.tables().await, db.history().await);
    let error = db.run(&MODIFIED).await.unwrap_err();
    let Error::ChecksumMismatch {
        version,
        source_path,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(*version, 2);
    assert!(
        source_path.ends_with("/2_create_posts.sql"),
        "{source_path}"
    );
    assert!(error.to_string().contains("repair"), "{error}");
    assert_eq!(
        (db.tables().await, db.history().await),
        before,
        "nothing changed"
    );

    let allowed = MODIFIED.clone().with_modified(Policy::Allow);
    assert!(db.run(&allowed).await.unwrap().applied().is_empty());
    assert!(db.run(&allowed).await.unwrap().applied().is_empty());
}

async fn unknown_version_is_refused(backend: Backend) {
    let db = fresh(backend, "unknown").await.pool().await;
    db.run(&V2).await.unwrap();
    let before = db.history().await;
    let error = db.run(&V1).await.unwrap_err();
    let Error::UnknownVersion {
        version,
        description,
        undo_to,
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!((*version, description.as_str()), (4, "create comments"));
    assert_eq!(*undo_to, None, "migration 4 has no down SQL to keep");
    assert_eq!(db.history().await, before);

    let allowed = V1.clone().with_missing(Policy::Allow);
    assert_eq!(db.run(&allowed).await.unwrap().head(), Some(3));
    assert_eq!(db.history().await, before, "the unknown row stays");
}

async fn out_of_order_is_refused_then_allowed(backend: Backend) {
    let db = fresh(backend, "order").await.pool().await;
    assert_eq!(versions(&db.run(&GAP).await.unwrap()), [1, 3]);
    let error = db.run(&V1).await.unwrap_err();
    let Error::OutOfOrder {
        version,
        newest_applied,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!((*version, *newest_applied), (2, 3));
    assert!(
        !db.tables().await.contains(&"posts".to_owned()),
        "nothing applied"
    );

    let allowed = V1.clone().with_out_of_order(Policy::Allow);
    assert_eq!(versions(&db.run(&allowed).await.unwrap()), [2]);
    // The history now vouches for this binary's chain: the strict migrator
    // finds it up to date.
    assert!(db.run(&V1).await.unwrap().applied().is_empty());
}

async fn a_failing_migration(backend: Backend) {
    let db = fresh(backend, "fail").await.pool().await;
    let error = db.run(&FAIL).await.unwrap_err();
    let Error::MigrationFailed {
        version,
        statement,
        transactional,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(*version, 2);
    if backend == Backend::MySql {
        // DDL commits by itself: the row says exactly where it stopped.
        assert!(!transactional);
        assert!(
            error.to_string().contains("run `repair --clear-failed 2`"),
            "the advice is a command that runs as written: {error}"
        );
        assert_eq!(*statement, Some(1), "{error}");
        assert_eq!(
            db.tables().await,
            ["half_done", "stowage_migrations", "users"]
        );
        assert_eq!(
            db.history().await,
            [(1, "applied".into(), None), (2, "failed".into(), Some(1))]
        );
        assert!(db.history_error(2).await.unwrap().contains("no_such_table"));
        let again = db.run(&FAIL).await.unwrap_err();
        let Error::FailedMigration {
            version: 2,
            statement: Some(1),
            error: Some(cause),
            ..
        } = &again
        else {
            panic!("{again}")
        };
        assert!(cause.contains("no_such_table"), "{cause}");
        assert!(
            again.to_string().contains("repair --clear-failed 2"),
            "{again}"
        );
    } else {
        assert!(transactional, "{error}");
        assert_eq!(
            db.tables().await,
            ["stowage_migrations", "users"],
            "no partial state"
        );
        assert_eq!(db.history().await, [(1, "applied".into(), None)]);
        // Nothing was recorded, so the next run tries again (and fails again).
        assert!(matches!(
            db.run(&FAIL).await,
            Err(Error::MigrationFailed { version: 2, .. })
        ));
    }
}

async fn trigger_bodies_survive(backend: Backend) {
    let db = fresh(backend, "trigger").await.pool().await;
    db.run(&TRIGGER).await.unwrap();
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM counts WHERE n = 1").await,
        1,
        "the trigger fired once"
    );
}

async fn custom_history_table(backend: Backend) {
    let db = fresh(backend, "config").await.pool().await;
    let bad = V1.clone().with_table("history; DROP TABLE users");
    let error = db.run(&bad).await.unwrap_err();
    assert!(matches!(error, Error::InvalidConfig(_)), "{error}");
    assert!(db.tables().await.is_empty(), "nothing created");

    let schema: &'static str = match backend {
        Backend::Sqlite => "main",
        _ => Box::leak(format!("audit_{}", std::process::id()).into_boxed_str()),
    };
    let custom = V1.clone().with_table("schema_history").with_schema(schema);
    assert_eq!(versions(&db.run(&custom).await.unwrap()), [1, 2, 3]);
    assert!(db.run(&custom).await.unwrap().applied().is_empty());
    let count = db
        .i64(&format!("SELECT COUNT(*) FROM {schema}.schema_history"))
        .await;
    assert_eq!(count, 3);
    if backend == Backend::MySql {
        db.execute(&format!("DROP DATABASE {schema}")).await;
    }
}

async fn lock_timeout_names_the_holder(backend: Backend) {
    let fresh_db = fresh(backend, "lock").await;
    let db = fresh_db.pool().await;
    let holder = fresh_db.pool().await;
    let held = holder.hold_migration_lock().await;
    let quick = V1.clone().with_lock_timeout(Duration::from_millis(700));
    let error = db.run(&quick).await.unwrap_err();
    let Error::LockTimeout { holder: who, .. } = &error else {
        panic!("{error}")
    };
    match backend {
        Backend::Postgres => assert!(who.as_deref().unwrap().starts_with("pid "), "{error}"),
        Backend::MySql => assert!(
            who.as_deref().unwrap().starts_with("connection "),
            "{error}"
        ),
        Backend::Sqlite => assert!(who.is_some()),
    }
    drop(held);
    holder.close().await;
    // Once the holder is gone, the run goes through.
    assert_eq!(versions(&db.run(&V1).await.unwrap()), [1, 2, 3]);
}

/// The same scenarios through `AnyPool`, which picks the dialect's folder.
async fn any_pool_picks_the_dialect(backend: Backend) {
    sqlx::any::install_default_drivers();
    let db = fresh(backend, "any").await;
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    assert_eq!(versions(&V1.run(&pool).await.unwrap()), [1, 2, 3]);
    let report = V2.run(&pool).await.unwrap();
    assert_eq!(versions(&report), [4]);
    let dialect = match backend {
        Backend::Postgres => stowage::Dialect::Postgres,
        Backend::MySql => stowage::Dialect::MySql,
        Backend::Sqlite => stowage::Dialect::Sqlite,
    };
    assert_eq!(report.dialect(), dialect);
    assert!(V2.run(&pool).await.unwrap().applied().is_empty());
}

stowage_tests::on_every_backend!(
    fresh_apply_then_no_op,
    a_new_migration_applies_alone,
    run_to_stops_at_the_version,
    modified_checksum_is_refused,
    unknown_version_is_refused,
    out_of_order_is_refused_then_allowed,
    a_failing_migration,
    trigger_bodies_survive,
    custom_history_table,
    lock_timeout_names_the_holder,
    any_pool_picks_the_dialect,
);

/// A `no-transaction` migration on SQLite steps outside the run's write
/// transaction (which is also its lock) and takes it again afterwards.
#[tokio::test]
async fn sqlite_no_transaction_migration() {
    static SIMPLE: Migrator = stowage::embed_migrations!("fixtures/simple");
    assert!(SIMPLE.iter().nth(1).unwrap().no_transaction());
    let db = fresh(Backend::Sqlite, "sqlite_no_tx").await.pool().await;
    assert_eq!(versions(&db.run(&SIMPLE).await.unwrap()), [1, 2]);
    assert_eq!(
        db.history().await,
        [(1, "applied".into(), None), (2, "applied".into(), None)]
    );
    db.execute("INSERT INTO users (id, name, email) VALUES (1, 'a', 'a@example.com')")
        .await;
    assert!(db.run(&SIMPLE).await.unwrap().applied().is_empty());
}

/// A MySQL `CALL` yields a result per result set of its procedure and one of
/// its own: the failing statement is still named right, after a procedure that
/// returned rows and inside one that fails after returning some.
#[tokio::test]
async fn mysql_calls_do_not_shift_the_failing_statement() {
    static CALLS: Migrator = stowage::embed_migrations!("fixtures/apply/call");
    let db = fresh(Backend::MySql, "calls").await.pool().await;
    let error = db.run(&CALLS).await.unwrap_err();
    let Error::MigrationFailed {
        version: 2,
        statement,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(*statement, Some(2), "CALL fails_inside(): {error}");
    assert!(error.to_string().contains("no_such_table"), "{error}");
}
