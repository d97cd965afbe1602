//! Taking over projects as they are: other tools' folders, written once and
//! run on every backend.

use stowage::{Migrator, Target};
use stowage_tests::{Backend, Kind, Pool, fresh, versions};

static DIESEL_PROJECT: Migrator = stowage::embed_migrations!("fixtures/diesel_project");

/// diesel's initial-setup folder, a `yyyy-mm-dd_hhmmss_name` folder, a
/// folder named by its version alone (`2024-03-14-080000`) and comment-only
/// migrations apply, are recorded like any other, and undo.
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

static SQLX_V2: Migrator = stowage::embed_migrations!("fixtures/takeover/sqlx_v2");
static SQLX_V2_OWN_HISTORY: Migrator =
    stowage::embed_migrations!("fixtures/takeover/sqlx_v2").with_take_over(false);
static SQLX_V1: Migrator = stowage::embed_migrations!("fixtures/takeover/sqlx_v1");
static REFINERY_V2: Migrator = stowage::embed_migrations!("fixtures/takeover/refinery_v2");
static DIESEL_PROJECT_HEAD: i64 = 202_403_140_800_000_000;

mod refinery_sets {
    refinery::embed_migrations!("fixtures/takeover/refinery_v1");
}

fn fixture(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Apply a folder with sqlx's own migrator, as `sqlx::migrate!` would.
async fn sqlx_migrate(db: &Pool, folder: &str) {
    let migrator = sqlx::migrate::Migrator::new(fixture(folder)).await.unwrap();
    match db.kind() {
        Kind::Postgres(p) => migrator.run(p).await.unwrap(),
        Kind::MySql(p) => migrator.run(p).await.unwrap(),
        Kind::Sqlite(p) => migrator.run(p).await.unwrap(),
    }
}

/// Apply refinery's embedded set with refinery's own runner and driver.
async fn refinery_migrate(fresh: &stowage_tests::Fresh) {
    let runner = refinery_sets::migrations::runner();
    match fresh.backend {
        Backend::Postgres => {
            let (mut client, connection) =
                tokio_postgres::connect(&fresh.url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            runner.run_async(&mut client).await.unwrap();
        }
        Backend::MySql => {
            let mut pool = mysql_async::Pool::new(fresh.url.as_str());
            runner.run_async(&mut pool).await.unwrap();
            pool.disconnect().await.unwrap();
        }
        Backend::Sqlite => {
            let path = fresh.url.strip_prefix("sqlite://").unwrap();
            let mut conn = rusqlite::Connection::open(path).unwrap();
            runner.run(&mut conn).unwrap();
        }
    }
}

/// The versions stowage recorded, and who it says applied them.
async fn recorded(db: &Pool) -> Vec<(i64, String)> {
    let versions: Vec<i64> = db.history().await.iter().map(|row| row.0).collect();
    let by = db
        .strings("SELECT applied_by FROM stowage_migrations ORDER BY version")
        .await;
    versions.into_iter().zip(by).collect()
}

fn imported_from(rows: &[(i64, String)], tool: &str) -> Vec<i64> {
    rows.iter()
        .filter(|(_, by)| by.starts_with(&format!("imported from {tool} (applied ")))
        .map(|(v, _)| *v)
        .collect()
}

/// A database sqlx migrated (one file with CRLF line ends, as on a Windows
/// checkout): `run` takes its history over and applies the one new
/// migration alone; sqlx's table is left as it was.
async fn run_takes_over_from_sqlx(backend: Backend) {
    let db = fresh(backend, "sqlx").await.pool().await;
    sqlx_migrate(&db, "fixtures/takeover/sqlx_v1").await;
    let report = db.run(&SQLX_V2).await.unwrap();
    assert_eq!(versions(&report), [3], "only the new migration ran");
    let rows = recorded(&db).await;
    assert_eq!(imported_from(&rows, "sqlx"), [1, 2]);
    assert_eq!(rows.len(), 3);
    assert_eq!(db.i64("SELECT COUNT(*) FROM accounts").await, 2);
    assert_eq!(db.i64("SELECT COUNT(*) FROM _sqlx_migrations").await, 2);
    assert!(db.run(&SQLX_V2).await.unwrap().applied().is_empty());
    assert!(db.verify(&SQLX_V2).await.unwrap().is_empty());
    let status = db.status(&SQLX_V2).await.unwrap().to_string();
    assert!(status.contains("imported from sqlx"), "{status}");
}

/// Each mismatch is refused by name, and nothing changes: a checksum sqlx
/// recorded for other content, a failed row, a version the binary lacks.
async fn a_sqlx_history_that_does_not_match_is_refused(backend: Backend) {
    let other_checksum = match backend {
        Backend::Postgres => "UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 2",
        Backend::MySql => "UPDATE _sqlx_migrations SET checksum = UNHEX('00') WHERE version = 2",
        Backend::Sqlite => "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 2",
    };
    let older = stowage::Migrator::from_dir(&OLDER).unwrap();
    let cases: [(Option<&str>, &Migrator, &str); 3] = [
        (
            Some(other_checksum),
            &SQLX_V2,
            "migration 2 (2_add_email.sql) is not the file sqlx applied",
        ),
        (
            Some("UPDATE _sqlx_migrations SET success = false WHERE version = 2"),
            &SQLX_V2,
            "migration 2 (add email) is recorded as failed",
        ),
        (
            None,
            &older,
            "it records migration 2 (add email), which this binary does not have",
        ),
    ];
    for (change, migrator, expected) in cases {
        let db = fresh(backend, "sqlx mismatch").await.pool().await;
        sqlx_migrate(&db, "fixtures/takeover/sqlx_v1").await;
        if let Some(change) = change {
            db.execute(change).await;
        }
        let schema = db.schema().await;
        refused(migrator_run(&db, migrator).await, expected);
        let mut tables = db.tables().await;
        tables.sort();
        assert_eq!(tables, ["_sqlx_migrations", "accounts"], "{backend:?}");
        assert_eq!(db.schema().await, schema);
    }

    let db = fresh(backend, "sqlx adopt").await.pool().await;
    sqlx_migrate(&db, "fixtures/takeover/sqlx_v1").await;
    refused(
        db.adopt(&SQLX_V1, stowage::Tool::Refinery)
            .await
            .unwrap_err(),
        "the table does not exist",
    );
    // Taken over explicitly, it is then stowage's: the next run applies 3.
    let adopted = db.adopt(&SQLX_V1, stowage::Tool::Sqlx).await.unwrap();
    assert_eq!(versions(&adopted), [1, 2]);
    refused(
        db.adopt(&SQLX_V1, stowage::Tool::Sqlx).await.unwrap_err(),
        "already holds 2 migrations",
    );
    assert_eq!(versions(&db.run(&SQLX_V2).await.unwrap()), [3]);
}

async fn migrator_run(db: &Pool, migrator: &Migrator) -> stowage::Error {
    db.run(migrator).await.unwrap_err()
}

fn refused(error: stowage::Error, expected: &str) {
    let message = error.to_string();
    assert!(
        matches!(error, stowage::Error::TakeOver { .. }) && message.contains(expected),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
}

static OLDER: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/fixtures/takeover/older");

/// A database refinery migrated with its own runner and driver.
async fn run_takes_over_from_refinery(backend: Backend) {
    let fresh = fresh(backend, "refinery").await;
    refinery_migrate(&fresh).await;
    let db = fresh.pool().await;
    let report = db.run(&REFINERY_V2).await.unwrap();
    assert_eq!(versions(&report), [3]);
    let rows = recorded(&db).await;
    assert_eq!(imported_from(&rows, "refinery"), [1, 2]);
    assert_eq!(db.i64("SELECT COUNT(*) FROM accounts").await, 2);

    // Another file than the one refinery applied: refused, nothing changed.
    let db = {
        let fresh = stowage_tests::fresh(backend, "refinery mismatch").await;
        refinery_migrate(&fresh).await;
        fresh.pool().await
    };
    db.execute("UPDATE refinery_schema_history SET checksum = '42' WHERE version = 1")
        .await;
    let error = db.run(&REFINERY_V2).await.unwrap_err().to_string();
    assert!(error.contains("migration 1 (V1__create_accounts.sql) is not the file refinery applied (checksum 42 recorded)"), "{error}");
    assert_eq!(db.tables().await, ["accounts", "refinery_schema_history"]);
}

/// A database diesel migrated: its table made as diesel makes it, with the
/// versions diesel records (a folder's name before the first `_`, dashes
/// removed; `yyyy-mm-dd_hhmmss_name` as the date alone).
async fn run_takes_over_from_diesel(backend: Backend) {
    let db = fresh(backend, "diesel").await.pool().await;
    db.execute(
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
       version VARCHAR(50) PRIMARY KEY NOT NULL,
       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)",
    )
    .await;
    let set = DIESEL_PROJECT.set(backend.dialect()).unwrap();
    for migration in set.iter().filter(|m| m.version() < DIESEL_PROJECT_HEAD) {
        db.execute(migration.up_sql()).await;
    }
    db.execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES \
         ('00000000000000'), ('20240312090000'), ('20240313')",
    )
    .await;
    let report = db.run(&DIESEL_PROJECT).await.unwrap();
    assert_eq!(versions(&report), [DIESEL_PROJECT_HEAD]);
    let rows = recorded(&db).await;
    assert_eq!(
        imported_from(&rows, "diesel"),
        [0, 202_403_120_900_000_000, 202_403_131_700_000_000]
    );

    // All four, the last named by its version alone, which diesel records
    // as that version.
    let db = fresh(backend, "diesel bare").await.pool().await;
    db.execute(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .await;
    for migration in set.iter() {
        db.execute(migration.up_sql()).await;
    }
    db.execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES \
         ('00000000000000'), ('20240312090000'), ('20240313'), ('20240314080000')",
    )
    .await;
    assert!(db.run(&DIESEL_PROJECT).await.unwrap().applied().is_empty());
    assert_eq!(
        imported_from(&recorded(&db).await, "diesel"),
        [
            0,
            202_403_120_900_000_000,
            202_403_131_700_000_000,
            DIESEL_PROJECT_HEAD
        ]
    );

    // A version no folder of the binary gives.
    let db = fresh(backend, "diesel unknown").await.pool().await;
    db.execute("CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)").await;
    db.execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('20240313170000')")
        .await;
    let error = db.run(&DIESEL_PROJECT).await.unwrap_err().to_string();
    assert!(
        error.contains("it records migration \"20240313170000\""),
        "{error}"
    );
    assert_eq!(db.tables().await, ["__diesel_schema_migrations"]);
}

/// Two tools' tables: `run` does not guess; `with_take_over(false)` leaves
/// them alone and starts a history of its own.
async fn two_histories_are_not_guessed_between(backend: Backend) {
    let db = fresh(backend, "two tools").await.pool().await;
    sqlx_migrate(&db, "fixtures/takeover/sqlx_v1").await;
    db.execute("CREATE TABLE refinery_schema_history (version INT PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255))").await;
    let error = db.run(&SQLX_V2).await.unwrap_err().to_string();
    assert!(
        error.contains("also holds the history of refinery"),
        "{error}"
    );
    let error = db.run(&SQLX_V2_OWN_HISTORY).await.unwrap_err().to_string();
    assert!(
        error.contains("no stowage history") && error.contains("nothing was changed"),
        "without taking over, the tables sqlx's history built are refused: {error}"
    );
}

stowage_tests::on_every_backend!(
    a_diesel_project_applies_and_undoes,
    run_takes_over_from_sqlx,
    a_sqlx_history_that_does_not_match_is_refused,
    run_takes_over_from_refinery,
    run_takes_over_from_diesel,
    two_histories_are_not_guessed_between,
);
