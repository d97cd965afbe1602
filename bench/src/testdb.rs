//! The test-database benchmark: one migrated database for one test, with
//! `stowage::testing::TestDb` (a copy of a template) and with the approach of
//! `#[sqlx::test]` (create an empty database, run every migration), at 10,
//! 100 and 500 migrations.

use crate::{Backend, Result, fresh, median};
use std::time::{Duration, Instant};
use stowage::Migrator;
use stowage::testing::TestDb;

static STOWAGE_10: Migrator = stowage::embed_migrations!("generated/sqlx10");
static STOWAGE_100: Migrator = stowage::embed_migrations!("generated/sqlx100");
static SQLX_10: [sqlx::migrate::Migrator; 3] = [
    sqlx::migrate!("generated/sqlx10/postgres"),
    sqlx::migrate!("generated/sqlx10/mysql"),
    sqlx::migrate!("generated/sqlx10/sqlite"),
];
static SQLX_100: [sqlx::migrate::Migrator; 3] = [
    sqlx::migrate!("generated/sqlx100/postgres"),
    sqlx::migrate!("generated/sqlx100/mysql"),
    sqlx::migrate!("generated/sqlx100/sqlite"),
];

fn sets(backend: Backend) -> [(usize, &'static Migrator, &'static sqlx::migrate::Migrator); 3] {
    let index = match backend {
        Backend::Postgres => 0,
        Backend::MySql => 1,
        Backend::Sqlite => 2,
    };
    let sqlx_500 = match backend {
        Backend::Postgres => &crate::SQLX_POSTGRES,
        Backend::MySql => &crate::SQLX_MYSQL,
        Backend::Sqlite => &crate::SQLX_SQLITE,
    };
    [
        (10, &STOWAGE_10, &SQLX_10[index]),
        (100, &STOWAGE_100, &SQLX_100[index]),
        (500, &crate::STOWAGE, sqlx_500),
    ]
}

/// `#[sqlx::test]`'s way: a new empty database, then every migration.
async fn sqlx_way(
    backend: Backend,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(Duration, crate::Fresh)> {
    let started = Instant::now();
    let db = fresh(backend).await?;
    match backend {
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await?;
            migrator.run(&mut conn).await?;
        }
        Backend::MySql => {
            let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(&db.url).await?;
            migrator.run(&mut conn).await?;
        }
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url).await?;
            migrator.run(&mut conn).await?;
        }
    }
    Ok((started.elapsed(), db))
}

/// A test's body: it writes a row to two tables (the reset has work).
async fn body(backend: Backend, url: &str) -> Result<()> {
    const WRITE: &str = "INSERT INTO t_1 (name, n) VALUES ('test', 9); \
                         INSERT INTO t_2 (name, n) VALUES ('test', 9)";
    match backend {
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
            sqlx::raw_sql(WRITE).execute(&mut conn).await?;
            sqlx::Connection::close(conn).await?;
        }
        Backend::MySql => {
            let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(url).await?;
            sqlx::raw_sql(WRITE).execute(&mut conn).await?;
            sqlx::Connection::close(conn).await?;
        }
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(url).await?;
            sqlx::raw_sql(WRITE).execute(&mut conn).await?;
            sqlx::Connection::close(conn).await?;
        }
    }
    Ok(())
}

pub(crate) async fn run(backends: &[Backend], trials: usize) -> Result<String> {
    let mut out = format!(
        "One migrated database for one test: median of {trials} trials; the template is built once per \
         migration set (its time is shown apart). *Waits*: from asking for the database to having it. \
         Each test writes a row to two tables. *All in*: that plus what happens at the end of the test \
         (sqlx: the drop; stowage: the reset for the next test, or the drop) and, for stowage, any spare copy \
         made in the background for a later test (which a test does not wait for).\n\n\
         | backend | migrations | stowage waits | sqlx waits | ÷ | stowage all in | sqlx all in | ÷ | template, once |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for &backend in backends {
        let server = match backend {
            Backend::Sqlite => "sqlite://".to_owned(),
            _ => crate::server_url(backend)?,
        };
        for (count, stowage_set, sqlx_set) in sets(backend) {
            let started = Instant::now();
            drop(TestDb::on(&server, stowage_set).await?);
            let template = started.elapsed();
            let (mut ours, mut ours_all) = (Vec::new(), Vec::new());
            let (mut theirs, mut theirs_all) = (Vec::new(), Vec::new());
            for _ in 0..trials {
                let started = Instant::now();
                let mut db = TestDb::on(&server, stowage_set).await?;
                let waited = started.elapsed();
                ours.push(waited);
                body(backend, db.url()).await?;
                // The server's whole work: the spare this test started
                // too, and the reset (or drop) at its end.
                let started = Instant::now();
                db.wait_for_spare();
                drop(db);
                ours_all.push(waited + started.elapsed());
                let (elapsed, db) = sqlx_way(backend, sqlx_set).await?;
                theirs.push(elapsed);
                body(backend, &db.url).await?;
                let started = Instant::now();
                db.drop_it().await?;
                theirs_all.push(elapsed + started.elapsed());
            }
            let (ours, theirs) = (median(ours), median(theirs));
            let (ours_all, theirs_all) = (median(ours_all), median(theirs_all));
            eprintln!(
                "{backend:?} {count}: waits {ours:.2?} vs {theirs:.2?}; all in {ours_all:.2?} vs {theirs_all:.2?}"
            );
            out.push_str(&format!(
                "| {backend:?} | {count} | {:.1} ms | {:.1} ms | {:.1} % | {:.1} ms | {:.1} ms | {:.0} % | {:.0} ms |\n",
                ms(ours),
                ms(theirs),
                100.0 * ours.as_secs_f64() / theirs.as_secs_f64(),
                ms(ours_all),
                ms(theirs_all),
                100.0 * ours_all.as_secs_f64() / theirs_all.as_secs_f64(),
                ms(template),
            ));
        }
    }
    Ok(out)
}
