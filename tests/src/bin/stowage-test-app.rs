//! A tiny application for the multi-process tests: it applies one of the
//! fixture sets to a database and prints what it applied.
//!
//! `stowage-test-app <database-url> <set> [lock-timeout-seconds]`; exit code 0
//! on success, 1 with the error on stderr.

use std::time::Duration;
use stowage::Migrator;

static V2: Migrator = stowage::embed_migrations!("fixtures/apply/v2");
static SLOW: Migrator = stowage::embed_migrations!("fixtures/apply/slow");
/// Placeholders with a value in code, which the environment overrides.
static FLYWAY: Migrator = stowage::embed_migrations!("fixtures/flyway/v1")
    .with_placeholders(&[("item_name", "from code")]);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(set)) = (args.get(1), args.get(2)) else {
        eprintln!(
            "usage: stowage-test-app <database-url> <v2|v2-lease|slow|flyway> [lock-timeout-seconds]"
        );
        std::process::exit(2);
    };
    let timeout = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(60);
    let migrator = match set.as_str() {
        "v2" => V2.clone(),
        "slow" => SLOW.clone(),
        "flyway" => FLYWAY.clone(),
        // The lock as a lease row, as behind a transaction pooler.
        "v2-lease" => V2.clone().with_lock(stowage::Lock::Lease),
        other => {
            eprintln!("unknown set {other}");
            std::process::exit(2);
        }
    }
    .with_lock_timeout(Duration::from_secs(timeout));
    let result = if url.starts_with("postgres") {
        match sqlx::PgPool::connect(url).await {
            Ok(pool) => migrator.run(&pool).await,
            Err(e) => fail(&e),
        }
    } else if url.starts_with("mysql") {
        match sqlx::MySqlPool::connect(url).await {
            Ok(pool) => migrator.run(&pool).await,
            Err(e) => fail(&e),
        }
    } else {
        match sqlx::SqlitePool::connect(url).await {
            Ok(pool) => migrator.run(&pool).await,
            Err(e) => fail(&e),
        }
    };
    match result {
        Ok(report) => {
            let versions: Vec<String> = report
                .applied()
                .iter()
                .map(|a| a.version.to_string())
                .collect();
            println!("applied={}", versions.join(","));
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}

fn fail(error: &sqlx::Error) -> ! {
    eprintln!("cannot connect: {error}");
    std::process::exit(1);
}
