//! One "test" in a process of its own, for the multi-process TestDb tests:
//! `stowage-test-testdb <server-url> ok|fail`, or
//! `stowage-test-testdb <server-url> lone` (a database from a migration set
//! of its own, dropped at once), or `stowage-test-testdb - pg-pool` (a test
//! taking a `PgPool`, on the server from the environment), or
//! `stowage-test-testdb - sqlite-pool` (one taking a `SqlitePool`, likewise),
//! or `stowage-test-testdb <server-url> evolving-v1|evolving-v2` (a test of one
//! folder's migrations before and after a migration was added, with spares
//! made ahead after any copy and waited for), or `stowage-test-testdb -
//! schema-file <path>` (`check_schema_file` of the objects set), or
//! `stowage-test-testdb - schema-snapshot <folder>` (`check_schema_snapshot`
//! of the schema set).

use stowage::testing::TestDb;

static OBJECTS: stowage::Migrator = stowage::embed_migrations!("fixtures/objects");
static SCHEMA: stowage::Migrator = stowage::embed_migrations!("fixtures/schema");
static LONE: stowage::Migrator = stowage::embed_migrations!("fixtures/lone");
static EVOLVING_V1: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/fixtures/evolving/v1");
static EVOLVING_V2: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/fixtures/evolving/v2");

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(server), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stowage-test-testdb <server-url> ok|fail|lone");
        std::process::exit(2);
    };
    sqlx::any::install_default_drivers();
    if mode == "pg-pool" {
        // A `#[stowage::test]` taking a PgPool, on the server the
        // environment gives (its first argument is ignored).
        let test = std::thread::spawn(|| {
            stowage::testing::harness::run(&OBJECTS, None, |_pool: sqlx::PgPool| async {});
        });
        if test.join().is_err() {
            std::process::exit(101);
        }
        return;
    }
    if mode == "sqlite-pool" {
        // A `#[stowage::test]` taking a SqlitePool, whatever server the
        // environment gives: it runs on a SQLite file.
        let test = std::thread::spawn(|| {
            stowage::testing::harness::run(&OBJECTS, None, |pool: sqlx::SqlitePool| async move {
                let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                println!("sqlite {version}");
            });
        });
        if test.join().is_err() {
            std::process::exit(101);
        }
        return;
    }
    if let Some(version) = mode.strip_prefix("evolving-") {
        let dir = if version == "v1" {
            &EVOLVING_V1
        } else {
            &EVOLVING_V2
        };
        if let Err(error) = evolving(server, dir).await {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
        return;
    }
    if mode == "schema-file" {
        // `check_schema_file` of the objects set, on the server of the
        // environment, against the file named next.
        let path = args.get(3).map_or("schema.sql", String::as_str);
        if let Err(error) = stowage::testing::check_schema_file(&OBJECTS, path).await {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
        return;
    }
    if mode == "schema-snapshot" {
        // `check_schema_snapshot` of the schema set, on the server of the
        // environment, in the folder named next.
        let folder = args.get(3).map_or(".", String::as_str);
        if let Err(error) = stowage::testing::check_schema_snapshot(&SCHEMA, folder).await {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
        return;
    }
    if mode == "lone" {
        match TestDb::on(server, &LONE).await {
            Ok(db) => println!("{}", db.name()),
            Err(error) => {
                eprintln!("error: {error}");
                std::process::exit(1);
            }
        }
        return;
    }
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

/// One test of the `evolving` folder at one point in its life: as many
/// spares and resets as stowage makes (copies ahead after any copy, resets
/// of any database), the spare it started finished before it ends.
async fn evolving(server: &str, dir: &include_dir::Dir<'_>) -> Result<(), stowage::Error> {
    stowage::testing::harness::copy_ahead_after(std::time::Duration::ZERO);
    stowage::testing::harness::reset_after(std::time::Duration::ZERO);
    let migrator = stowage::Migrator::from_dir(dir)?;
    let mut db = TestDb::on(server, &migrator).await?;
    let pool: sqlx::AnyPool = db.pool().await?;
    sqlx::query("INSERT INTO items (id, name) VALUES (2, 'this test')")
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count, 2, "the seed row and this test's row, nothing else");
    pool.close().await;
    db.wait_for_spare();
    println!("{}", db.name());
    Ok(())
}
