//! Taking over projects as they are: other tools' folders, written once and
//! run on every backend.

use stowage::{Migrator, Target};
use stowage_tests::{Backend, fresh, versions};

static DIESEL_PROJECT: Migrator = stowage::embed_migrations!("fixtures/diesel_project");

/// diesel's initial-setup folder, a `yyyy-mm-dd_hhmmss_name` folder and
/// comment-only migrations apply, are recorded like any other, and undo.
async fn a_diesel_project_applies_and_undoes(backend: Backend) {
    let db = fresh(backend, "diesel project").await.pool().await;
    let report = db.run(&DIESEL_PROJECT).await.unwrap();
    let all = [
        0,
        202_403_120_900_000_000,
        202_403_131_700_000_000,
        202_403_140_800_000_000,
    ];
    assert_eq!(versions(&report), all);
    let recorded: Vec<i64> = db.history().await.iter().map(|row| row.0).collect();
    assert_eq!(recorded, all);
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM users WHERE flag = 0").await,
        0,
        "the date_time folder ran after the table was made"
    );
    assert!(db.run(&DIESEL_PROJECT).await.unwrap().applied().is_empty());

    let undone = db.undo(&DIESEL_PROJECT, Target::Base).await.unwrap();
    let reverted: Vec<i64> = undone.reverted().iter().map(|a| a.version).collect();
    assert_eq!(reverted, all.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(db.tables().await, ["stowage_migrations"]);
    assert_eq!(versions(&db.run(&DIESEL_PROJECT).await.unwrap()), all);
}

stowage_tests::on_every_backend!(a_diesel_project_applies_and_undoes);
