//! undo, stamp, status, verify, plan and repair on every backend.

use std::time::Duration;
use stowage::{Error, MigrationState, Migrator, RepairAction, Target};
use stowage_tests::{Backend, fresh, versions};

static OPERATE: Migrator = stowage::embed_migrations!("fixtures/operate");
static V1: Migrator = stowage::embed_migrations!("fixtures/apply/v1");
static V2: Migrator = stowage::embed_migrations!("fixtures/apply/v2");
static MODIFIED: Migrator = stowage::embed_migrations!("fixtures/apply/modified");
static FAIL: Migrator = stowage::embed_migrations!("fixtures/apply/fail");
/// A down SQL that fails at its second statement.
static BAD_DOWN: Migrator = stowage::embed_migrations!("fixtures/bad_down");
/// V1 with migration 2's file deleted.
static GAP: Migrator = stowage::embed_migrations!("fixtures/apply/gap");

fn reverted(report: &stowage::Report) -> Vec<i64> {
    report.reverted().iter().map(|a| a.version).collect()
}

fn applied(history: &[(i64, String, Option<i64>)]) -> Vec<i64> {
    history.iter().map(|(v, _, _)| *v).collect()
}

async fn undo_steps_version_and_base(backend: Backend) {
    let db = fresh(backend, "undo").await.pool().await;
    db.run(&OPERATE).await.unwrap();
    let report = db.undo(&OPERATE, Target::Steps(1)).await.unwrap();
    assert_eq!(reverted(&report), [4]);
    assert_eq!(report.head(), Some(3));
    assert!(
        report.to_string().contains("reverted 1 migration"),
        "{report}"
    );
    assert_eq!(applied(&db.history().await), [1, 2, 3]);
    assert_eq!(
        reverted(&db.undo(&OPERATE, Target::Version(1)).await.unwrap()),
        [3, 2]
    );
    assert_eq!(db.tables().await, ["stowage_migrations", "users"]);
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM users").await,
        0,
        "the seed's down ran"
    );
    assert_eq!(
        reverted(&db.undo(&OPERATE, Target::Base).await.unwrap()),
        [1]
    );
    assert_eq!(db.tables().await, ["stowage_migrations"]);
    assert!(db.history().await.is_empty());
    assert!(
        db.undo(&OPERATE, Target::Base)
            .await
            .unwrap()
            .reverted()
            .is_empty()
    );
    assert!(matches!(
        db.undo(&OPERATE, Target::Head).await,
        Err(Error::InvalidTarget(_))
    ));
}

async fn undo_refuses_without_down_sql(backend: Backend) {
    let db = fresh(backend, "irreversible").await.pool().await;
    db.run(&V1).await.unwrap();
    let before = (db.schema().await, db.history().await);
    let error = db.undo(&V1, Target::Base).await.unwrap_err();
    let Error::Irreversible { version: 3, .. } = &error else {
        panic!("{error}")
    };
    // A plan, which never changes anything, does not say it changed nothing.
    let planned = db.plan(&V1, Target::Base).await.unwrap_err();
    assert!(
        matches!(planned, Error::Irreversible { version: 3, .. }),
        "{planned}"
    );
    assert!(
        !planned.to_string().contains("nothing was changed"),
        "{planned}"
    );
    assert!(
        error
            .to_string()
            .contains("`down` refuses before running anything"),
        "{error}"
    );
    assert_eq!((db.schema().await, db.history().await), before);

    // A modified migration in the range is refused too, before anything runs.
    let error = db.undo(&MODIFIED, Target::Steps(1)).await.unwrap_err();
    assert!(
        matches!(error, Error::Irreversible { version: 3, .. }),
        "{error}"
    );
    assert_eq!((db.schema().await, db.history().await), before);
}

async fn undo_refuses_a_modified_migration(backend: Backend) {
    let db = fresh(backend, "undo_modified").await.pool().await;
    db.run(&OPERATE).await.unwrap();
    // As if migration 3 had been applied from another version of its file.
    let bytes = if backend == Backend::Postgres {
        "'\\x00'::bytea"
    } else {
        "X'00'"
    };
    db.execute(&format!(
        "UPDATE stowage_migrations SET checksum = {bytes} WHERE version = 3"
    ))
    .await;
    let before = (db.schema().await, db.history().await);
    let error = db.undo(&OPERATE, Target::Version(2)).await.unwrap_err();
    assert!(
        matches!(error, Error::ChecksumMismatch { version: 3, .. }),
        "{error}"
    );
    assert_eq!(
        (db.schema().await, db.history().await),
        before,
        "not even 4 was reverted"
    );
}

async fn up_down_up_leaves_the_same_schema(backend: Backend) {
    let db = fresh(backend, "roundtrip").await.pool().await;
    db.run(&OPERATE).await.unwrap();
    let first = db.schema().await;
    assert!(first.len() >= 3, "{first:?}");
    db.undo(&OPERATE, Target::Base).await.unwrap();
    assert!(db.schema().await.is_empty());
    db.run(&OPERATE).await.unwrap();
    assert_eq!(db.schema().await, first);
}

async fn stamp_then_run_applies_only_later(backend: Backend) {
    let db = fresh(backend, "stamp").await.pool().await;
    // An existing database: the tables of migrations 1 and 2, made by hand.
    let set = OPERATE.set(dialect(backend)).unwrap();
    for migration in set.iter().take(2) {
        db.execute(migration.up_sql()).await;
    }
    let before = db.schema().await;
    let report = db.stamp(&OPERATE, Target::Version(2)).await.unwrap();
    assert_eq!(versions(&report), [1, 2]);
    assert_eq!(db.schema().await, before, "stamp runs no migration SQL");
    let report = db.run(&OPERATE).await.unwrap();
    assert_eq!(versions(&report), [3, 4]);
    // Status tells the stamped rows from those that ran.
    let status = db.status(&OPERATE).await.unwrap();
    let stamped: Vec<(i64, bool)> = status
        .migrations
        .iter()
        .map(|m| (m.version, m.stamped))
        .collect();
    assert_eq!(stamped, [(1, true), (2, true), (3, false), (4, false)]);
    let table = status.to_string();
    assert_eq!(table.matches("(stamped, not run)").count(), 2, "{table}");

    // Stamping lower removes the rows above; base removes all.
    db.stamp(&OPERATE, Target::Version(1)).await.unwrap();
    assert_eq!(applied(&db.history().await), [1]);
    db.stamp(&OPERATE, Target::Base).await.unwrap();
    assert!(db.history().await.is_empty());
    db.stamp(&OPERATE, Target::Head).await.unwrap();
    assert_eq!(applied(&db.history().await), [1, 2, 3, 4]);
    assert!(matches!(
        db.stamp(&OPERATE, Target::Version(99)).await,
        Err(Error::InvalidTarget(_))
    ));
    assert!(matches!(
        db.stamp(&OPERATE, Target::Steps(1)).await,
        Err(Error::InvalidTarget(_))
    ));
}

fn dialect(backend: Backend) -> stowage::Dialect {
    match backend {
        Backend::Postgres => stowage::Dialect::Postgres,
        Backend::MySql => stowage::Dialect::MySql,
        Backend::Sqlite => stowage::Dialect::Sqlite,
    }
}

fn states(status: &stowage::Status) -> Vec<(i64, MigrationState)> {
    status
        .migrations
        .iter()
        .map(|m| (m.version, m.state))
        .collect()
}

async fn status_shows_every_state(backend: Backend) {
    use MigrationState::{Applied, Failed, Missing, Modified, Pending};
    let db = fresh(backend, "status").await.pool().await;
    let status = db.status(&V2).await.unwrap();
    assert_eq!(
        states(&status),
        [(1, Pending), (2, Pending), (3, Pending), (4, Pending)]
    );
    assert!(!status.is_up_to_date());
    db.run_to(&V2, 2).await.unwrap();
    let status = db.status(&V2).await.unwrap();
    assert_eq!(
        states(&status),
        [(1, Applied), (2, Applied), (3, Pending), (4, Pending)]
    );
    assert_eq!(status.current(), Some(2));
    let entry = &status.migrations[0];
    assert!(
        entry
            .applied_at
            .as_deref()
            .is_some_and(|a| a.starts_with("20")),
        "{entry:?}"
    );
    assert!(
        entry
            .applied_by
            .as_deref()
            .is_some_and(|a| a.contains("pid")),
        "{entry:?}"
    );

    db.run(&V2).await.unwrap();
    let status = db.status(&MODIFIED).await.unwrap();
    assert_eq!(
        states(&status),
        [(1, Applied), (2, Modified), (3, Applied), (4, Missing)]
    );

    // The table: one line per migration, columns aligned.
    let text = status.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("VERSION"), "{text}");
    let state_column = lines[0].find("STATE").unwrap();
    for line in &lines[1..5] {
        assert!(line[state_column..].starts_with(['a', 'm']), "{text}");
    }
    assert!(lines[5].contains("0 pending"), "{text}");

    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["migrations"][1]["state"], "modified");
    assert_eq!(json["migrations"][3]["version"], 4);

    let failing = fresh(backend, "status_failed").await.pool().await;
    if backend == Backend::MySql {
        failing.run(&FAIL).await.unwrap_err();
    } else {
        failing.run(&FAIL).await.unwrap_err();
        let bytes = if backend == Backend::Postgres {
            "'\\x00'::bytea"
        } else {
            "X'00'"
        };
        failing
            .execute(&format!(
                "INSERT INTO stowage_migrations (version, description, checksum, chain, state, failed_statement, applied_by) \
                 VALUES (2, 'broken', {bytes}, {bytes}, 'failed', 1, 'test')"
            ))
            .await;
    }
    assert_eq!(
        states(&failing.status(&FAIL).await.unwrap()),
        [(1, Applied), (2, Failed)]
    );
}

async fn verify_reports_every_problem(backend: Backend) {
    let db = fresh(backend, "verify").await.pool().await;
    assert!(
        db.verify(&V2).await.unwrap().is_empty(),
        "a fresh database has no problems"
    );
    db.run(&V2).await.unwrap();
    assert!(db.verify(&V2).await.unwrap().is_empty());
    let before = db.history().await;
    let problems = db.verify(&MODIFIED).await.unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        matches!(problems[0], Error::ChecksumMismatch { version: 2, .. }),
        "{problems:?}"
    );
    assert!(
        matches!(problems[1], Error::UnknownVersion { version: 4, .. }),
        "{problems:?}"
    );
    assert_eq!(db.history().await, before, "verify changes nothing");
}

async fn plan_executes_nothing(backend: Backend) {
    let db = fresh(backend, "plan").await.pool().await;
    let plan = db.plan(&OPERATE, Target::Head).await.unwrap();
    assert!(plan.up);
    assert_eq!(
        plan.steps.iter().map(|s| s.version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(
        plan.to_string()
            .contains("-- up 1 create users\nCREATE TABLE users"),
        "{plan}"
    );
    assert!(
        db.tables().await.is_empty(),
        "plan creates nothing, not even the history table"
    );
    assert_eq!(
        db.plan(&OPERATE, Target::Version(2))
            .await
            .unwrap()
            .steps
            .len(),
        2
    );

    db.run(&OPERATE).await.unwrap();
    assert!(
        db.plan(&OPERATE, Target::Head)
            .await
            .unwrap()
            .steps
            .is_empty()
    );
    let down = db.plan(&OPERATE, Target::Steps(2)).await.unwrap();
    assert!(!down.up);
    assert_eq!(
        down.steps.iter().map(|s| s.version).collect::<Vec<_>>(),
        [4, 3]
    );
    assert!(down.steps[0].sql.contains("DROP COLUMN email"));
    assert_eq!(
        db.plan(&OPERATE, Target::Version(1))
            .await
            .unwrap()
            .steps
            .len(),
        3
    );
    assert_eq!(
        applied(&db.history().await),
        [1, 2, 3, 4],
        "plan executed nothing"
    );
    // A binary without migration 4 plans its revert from the down SQL the
    // history keeps; without it kept, it refuses.
    let kept = db.plan(&V1, Target::Steps(1)).await.unwrap();
    assert_eq!(kept.steps.len(), 1);
    assert_eq!(kept.steps[0].version, 4);
    assert!(kept.steps[0].sql.contains("DROP COLUMN email"), "{kept:?}");
    db.execute("UPDATE stowage_migrations SET down_sql = NULL WHERE version = 4")
        .await;
    assert!(matches!(
        db.plan(&V1, Target::Steps(1)).await,
        Err(Error::UnknownVersion {
            version: 4,
            undo_to: None,
            ..
        })
    ));
    assert_eq!(applied(&db.history().await), [1, 2, 3, 4]);
}

async fn repair_accepts_checksums_and_clears_failed_rows(backend: Backend) {
    let db = fresh(backend, "repair").await.pool().await;
    db.run(&V1).await.unwrap();
    assert!(matches!(
        db.run(&MODIFIED).await,
        Err(Error::ChecksumMismatch { .. })
    ));
    assert_eq!(
        db.repair(&MODIFIED, RepairAction::AcceptChecksums)
            .await
            .unwrap(),
        2, // row 2 takes the new checksum; rows 2 and 3 the new chain
    );
    assert!(db.run(&MODIFIED).await.unwrap().applied().is_empty());
    assert!(db.verify(&MODIFIED).await.unwrap().is_empty());

    assert!(matches!(
        db.repair(&MODIFIED, RepairAction::ClearFailed(2)).await,
        Err(Error::InvalidTarget(_))
    ));
    db.execute(
        "UPDATE stowage_migrations SET state = 'failed', failed_statement = 1 WHERE version = 3",
    )
    .await;
    assert!(matches!(
        db.run(&MODIFIED).await,
        Err(Error::FailedMigration { version: 3, .. })
    ));
    assert_eq!(
        db.repair(&MODIFIED, RepairAction::ClearFailed(3))
            .await
            .unwrap(),
        1
    );
    assert_eq!(applied(&db.history().await), [1, 2]);
}

async fn repair_needs_the_lock(backend: Backend) {
    let fresh_db = fresh(backend, "repair_lock").await;
    let db = fresh_db.pool().await;
    db.run(&V1).await.unwrap();
    db.execute("UPDATE stowage_migrations SET state = 'failed' WHERE version = 3")
        .await;
    let before = db.history().await;
    let holder = fresh_db.pool().await;
    let _held = holder.hold_migration_lock().await;
    let quick = V1.clone().with_lock_timeout(Duration::from_millis(500));
    let error = db
        .repair(&quick, RepairAction::ClearFailed(3))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::LockTimeout { .. }), "{error}");
    assert_eq!(db.history().await, before, "nothing changed");
    let error = db.undo(&quick, Target::Base).await.unwrap_err();
    assert!(matches!(error, Error::LockTimeout { .. }), "{error}");
}

/// After an applied migration's file was deleted, `verify` and `run` agree
/// before and after `repair --accept-checksums`: the migration the binary
/// lacks is a problem for both, and the repair does not make the history
/// vouch for a list of migrations the database does not hold (which would
/// let the next run's one-query check call the database up to date).
async fn verify_and_run_agree_after_repair(backend: Backend) {
    let db = fresh(backend, "repair agree").await.pool().await;
    db.run(&V1).await.unwrap();
    // Both refuse the migration the binary lacks: the problems verify lists.
    let both_refuse_2 = async || {
        let problems = db.verify(&GAP).await.unwrap();
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Error::UnknownVersion { version: 2, .. })),
            "{problems:?}"
        );
        let error = db.run(&GAP).await.unwrap_err();
        assert!(
            matches!(error, Error::UnknownVersion { version: 2, .. }),
            "{error}"
        );
        problems
    };
    both_refuse_2().await;
    db.repair(&GAP, RepairAction::AcceptChecksums)
        .await
        .unwrap();
    let problems = both_refuse_2().await;
    for problem in &problems {
        let text = problem.to_string();
        assert!(!text.contains("out-of-order allowed"), "{text}");
    }
    // With the binary that has it again, all is well.
    assert!(db.verify(&V1).await.unwrap().is_empty());
    assert!(db.run(&V1).await.unwrap().applied().is_empty());
}

/// A failing down SQL is named by its own file, and the migration stays
/// recorded as applied.
async fn a_failing_down_says_so_and_keeps_the_row(backend: Backend) {
    let db = fresh(backend, "bad_down").await.pool().await;
    db.run(&BAD_DOWN).await.unwrap();
    let error = db.undo(&BAD_DOWN, Target::Base).await.unwrap_err();
    assert!(
        matches!(error, Error::UndoFailed { version: 1, .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("undoing migration 1 (1_box.down.sql) failed"),
        "{message}"
    );
    assert!(message.contains("no_such_table"), "{message}");
    // Where in the down file, as for a failing up.
    assert!(
        message.contains("failed at line 2 (`INSERT INTO no_such_table VALUES (1)"),
        "{message}"
    );
    assert_eq!(applied(&db.history().await), [1]);
}

stowage_tests::on_every_backend!(
    a_failing_down_says_so_and_keeps_the_row,
    verify_and_run_agree_after_repair,
    undo_steps_version_and_base,
    undo_refuses_without_down_sql,
    undo_refuses_a_modified_migration,
    up_down_up_leaves_the_same_schema,
    stamp_then_run_applies_only_later,
    status_shows_every_state,
    verify_reports_every_problem,
    plan_executes_nothing,
    repair_accepts_checksums_and_clears_failed_rows,
    repair_needs_the_lock,
);
