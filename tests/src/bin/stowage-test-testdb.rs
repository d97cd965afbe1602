//! One "test" in a process of its own, for the multi-process TestDb tests:
//! `stowage-test-testdb <server-url> ok|fail`.

use stowage::testing::TestDb;

static OBJECTS: stowage::Migrator = stowage::embed_migrations!("fixtures/objects");

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(server), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stowage-test-testdb <server-url> ok|fail");
        std::process::exit(2);
    };
    sqlx::any::install_default_drivers();
    let db = match TestDb::on(server, &OBJECTS).await {
        Ok(db) => db,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    };
    let pool: sqlx::AnyPool = db.pool().await.unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("INSERT INTO parent (id, name) VALUES (100, 'same row everywhere')")
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parent")
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count, 2, "the seed row and this test's row, nothing else");
    pool.close().await;
    if mode == "fail" {
        panic!("a deliberate failure in {}", db.name());
    }
    println!("{}", db.name());
}
