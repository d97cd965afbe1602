//! PostgreSQL-only behaviour: `CREATE INDEX CONCURRENTLY`.

use sqlx::Connection;
use stowage::Migrator;
use stowage_tests::{Backend, fresh};

static CONCURRENTLY: Migrator = stowage::embed_migrations!("fixtures/apply/concurrently");

#[tokio::test]
async fn create_index_concurrently_in_a_no_transaction_migration() {
    let db = fresh(Backend::Postgres, "concurrently").await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let report = CONCURRENTLY.run(&mut conn).await.unwrap();
    assert_eq!(report.applied().len(), 2);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'users' AND indexname <> 'users_pkey' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(indexes, ["users_id_name", "users_name"]);
    let valid: bool = sqlx::query_scalar(
        "SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'users'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(valid);
    assert!(
        CONCURRENTLY
            .run(&mut conn)
            .await
            .unwrap()
            .applied()
            .is_empty()
    );
}
