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

stowage_tests::on_every_backend!(multi_thread: a_cancelled_run_leaves_no_lock);
