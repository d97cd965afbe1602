//! `#[stowage::test]`: each function gets a fresh, migrated database of the
//! type it asks for. Under nextest each runs in a process of its own; under
//! `cargo test`, in threads.

use stowage::Migrator;
use stowage::testing::TestDb;

static OBJECTS: Migrator = stowage::embed_migrations!("fixtures/objects");

#[stowage::test(migrator = "OBJECTS", server = "STOWAGE_TEST_PG_URL")]
async fn postgres_pool(pool: sqlx::PgPool) {
    let seed: String = sqlx::query_scalar("SELECT name FROM parent")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seed, "seed");
    sqlx::query("INSERT INTO parent VALUES (100, 'mine')")
        .execute(&pool)
        .await
        .unwrap();
}

#[stowage::test(migrator = "OBJECTS", server = "STOWAGE_TEST_PG_URL")]
async fn postgres_pool_again_sees_nothing_of_the_other(
    pool: sqlx::PgPool,
) -> Result<(), sqlx::Error> {
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parent")
        .fetch_one(&pool)
        .await?;
    assert_eq!(rows, 1, "only the seed row");
    sqlx::query("INSERT INTO parent VALUES (100, 'mine too')")
        .execute(&pool)
        .await?;
    Ok(())
}

#[stowage::test(migrator = "OBJECTS", server = "STOWAGE_TEST_MYSQL_URL")]
async fn mysql_pool(pool: sqlx::MySqlPool) -> Result<(), sqlx::Error> {
    sqlx::query("CALL add_parent(5, 'five')")
        .execute(&pool)
        .await?;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parent")
        .fetch_one(&pool)
        .await?;
    assert_eq!(rows, 2);
    Ok(())
}

/// A server variable that is not set is a failure that says so, never a skip.
#[stowage::test(
    migrations = "fixtures/objects",
    server = "STOWAGE_TEST_VARIABLE_NOBODY_SETS"
)]
#[should_panic(expected = "STOWAGE_TEST_VARIABLE_NOBODY_SETS is not set")]
async fn missing_server_variable(_pool: sqlx::AnyPool) {}

/// Without `server`, the environment's server, or SQLite files.
#[stowage::test(migrations = "fixtures/objects")]
async fn any_pool_from_the_environment(pool: sqlx::AnyPool) {
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parent_names")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[stowage::test(migrator = "OBJECTS")]
async fn sqlite_or_env_test_db(db: TestDb) {
    assert!(db.name().starts_with("stowage_test_"));
    let pool: sqlx::AnyPool = db.pool().await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stowage_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 2);
}
