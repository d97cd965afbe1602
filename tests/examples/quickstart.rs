//! The quickstart as a program: apply this repository's `migrations/` to a
//! database and print what happened. Run it twice: the second run finds the
//! database up to date.
//!
//! ```text
//! cargo run -p stowage-tests --example quickstart                 # SQLite file quickstart.db
//! DATABASE_URL=postgres://… cargo run -p stowage-tests --example quickstart
//! ```

static MIGRATOR: stowage::Migrator = stowage::embed_migrations!(); // ./migrations

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://quickstart.db?mode=rwc".to_owned());
    sqlx::any::install_default_drivers();
    let result = async {
        let pool = sqlx::AnyPool::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        MIGRATOR.run(&pool).await.map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(report) => println!("{report}"),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
