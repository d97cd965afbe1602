//! The fast path: an up-to-date database costs exactly one statement.
//!
//! The statements are counted from sqlx's own `sqlx::query` log events, with a
//! global subscriber; this file holds one test so that nothing else runs in
//! its process.

use sqlx::Connection;
use stowage::Migrator;
use stowage_tests::count::StatementCounter;
use stowage_tests::{Backend, fresh};

static V2: Migrator = stowage::embed_migrations!("fixtures/apply/v2");
/// Repeatable migrations and callback files too.
static FLYWAY: Migrator =
    stowage::embed_migrations!("fixtures/flyway/v1").with_placeholders(&[("item_name", "widget")]);

/// Count the statements sqlx sends during one run on a connection of its own.
fn statements_of_a_run(
    backend: Backend,
    counter: &StatementCounter,
    migrator: &Migrator,
    applied: usize,
) -> (usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = fresh(backend, "fast").await;
        macro_rules! measure {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(&db.url).await.unwrap();
                let before = counter.count();
                assert_eq!(
                    migrator.run(&mut conn).await.unwrap().applied().len(),
                    applied
                );
                let slow = counter.count() - before;
                let before = counter.count();
                assert!(migrator.run(&mut conn).await.unwrap().applied().is_empty());
                (slow, counter.count() - before)
            }};
        }
        match backend {
            Backend::Postgres => measure!(sqlx::PgConnection),
            Backend::MySql => measure!(sqlx::MySqlConnection),
            Backend::Sqlite => measure!(sqlx::SqliteConnection),
        }
    })
}

static V1: Migrator = stowage::embed_migrations!("fixtures/apply/v1");

/// A run with work on a database that has its history table draws no
/// notice from PostgreSQL (`relation … already exists, skipping`).
fn notices_of_a_second_run(counter: &StatementCounter) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = fresh(Backend::Postgres, "notices").await;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        V1.run(&mut conn).await.unwrap();
        let before = counter.notices();
        assert_eq!(V2.run(&mut conn).await.unwrap().applied().len(), 1);
        counter.notices() - before
    })
}

#[test]
fn up_to_date_is_one_statement() {
    let counter = StatementCounter::default();
    tracing::subscriber::set_global_default(counter.clone()).unwrap();
    assert_eq!(
        notices_of_a_second_run(&counter),
        0,
        "notices from stowage's own statements"
    );
    for backend in [Backend::Postgres, Backend::MySql, Backend::Sqlite] {
        for (migrator, applied) in [(&V2, 4), (&FLYWAY, 3)] {
            let (slow, fast) = statements_of_a_run(backend, &counter, migrator, applied);
            assert!(
                slow > applied,
                "{backend:?}: the counter sees sqlx's statements ({slow})"
            );
            assert_eq!(
                fast, 1,
                "{backend:?}: an up-to-date run sends exactly one statement, with {applied} migrations"
            );
        }
    }
}
