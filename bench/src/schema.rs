//! Reading a schema: `Migrator::dump` against the database's own dump tool
//! (`pg_dump --schema-only`, `mariadb-dump --no-data`, sqlite3's
//! `.schema`) on the DDL-heavy schema of `ddl.rs` (40 tables with foreign
//! keys, 30 indexes), and `Migrator::drift`, which also builds the
//! expected schema in a scratch database (or, given the schema snapshot,
//! reads it from the binary). Connecting included. With `--folder`, a
//! real project's migrations folder instead, applied as far as the server
//! takes it.

use crate::ddl::{Applier, DDL, apply, dialect, mysql_parts};
use crate::{Backend, Fresh, Result, fresh, median, median_ratio};
use sqlx::Connection;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The database's own dump tool on `db`.
fn native_dump(db: &Fresh) -> Result<()> {
    let mut command = match db.backend {
        Backend::Postgres => {
            let mut c = Command::new("pg_dump");
            c.args(["--schema-only", "-d", &db.url]);
            c
        }
        Backend::MySql => {
            let (user, password, host, port, database) = mysql_parts(&db.url)?;
            let mut c = Command::new("mariadb-dump");
            c.args(["--no-data", "--routines", "--triggers", "--events"])
                .args(["-u", &user, "-h", &host, "-P", &port, &database]);
            if !password.is_empty() {
                c.env("MYSQL_PWD", password);
            }
            c
        }
        Backend::Sqlite => {
            let mut c = Command::new("sqlite3");
            c.args([&db.sqlite_path(), ".schema"]);
            c
        }
    };
    let status = command
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start the dump tool: {e}"))?;
    if !status.success() {
        return Err(format!("the dump tool failed: {status}").into());
    }
    Ok(())
}

/// What [`stowage`] does.
#[derive(Clone, Copy)]
enum Read<'a> {
    /// `Migrator::dump`: the number of objects and of tables.
    Dump,
    /// `Migrator::drift` with this migrator: the number of differences.
    Drift(&'a stowage::Migrator),
    /// `Migrator::schema_snapshot`: its text.
    Snapshot,
}

/// `read` on a connection of its own, with `migrator`.
async fn stowage(
    db: &Fresh,
    migrator: &stowage::Migrator,
    read: Read<'_>,
) -> Result<(usize, String)> {
    macro_rules! on {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(&db.url).await?;
            let n = match read {
                Read::Dump => {
                    let schema = migrator.dump(&mut c).await?;
                    let tables = schema
                        .objects()
                        .iter()
                        .filter(|o| o.kind == stowage::ObjectKind::Table)
                        .count();
                    (schema.objects().len(), tables.to_string())
                }
                Read::Drift(with) => {
                    let drift = with.drift(&mut c, &db.url).await?;
                    (drift.differences.len(), format!("{}", drift.from_snapshot))
                }
                Read::Snapshot => (0, migrator.schema_snapshot(&mut c).await?),
            };
            c.close().await?;
            n
        }};
    }
    Ok(match db.backend {
        Backend::Postgres => on!(sqlx::PgConnection),
        Backend::MySql => on!(sqlx::MySqlConnection),
        Backend::Sqlite => on!(sqlx::SqliteConnection),
    })
}

/// `migrator.run_to(version)` on the database at `url`.
async fn run_to(
    backend: Backend,
    url: &str,
    migrator: &stowage::Migrator,
    version: i64,
) -> Result<()> {
    macro_rules! on {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await?;
            let ran = migrator.run_to(&pool, version).await;
            pool.close().await;
            ran?;
        }};
    }
    match backend {
        Backend::Postgres => on!(sqlx::PgPool),
        Backend::MySql => on!(sqlx::MySqlPool),
        Backend::Sqlite => on!(sqlx::SqlitePool),
    }
    Ok(())
}

/// Apply `migrator` to `db` as far as the server takes it: one version
/// at a time on a probe database, then up to the last that applied on
/// `db` (so that it holds no failed migration). The version reached.
async fn apply_folder(backend: Backend, db: &Fresh, migrator: &stowage::Migrator) -> Result<i64> {
    let set = migrator
        .set(dialect(backend))
        .ok_or("the folder has no migrations for this backend")?;
    let probe = fresh(backend).await?;
    let mut last = None;
    for version in set.iter().map(stowage::Migration::version) {
        if run_to(backend, &probe.url, migrator, version)
            .await
            .is_err()
        {
            eprintln!(
                "{backend:?}: the server refuses version {version}; measuring at the one before"
            );
            break;
        }
        last = Some(version);
    }
    probe.drop_it().await?;
    let last = last.ok_or("the server refuses the folder's first migration")?;
    run_to(backend, &db.url, migrator, last).await?;
    Ok(last)
}

/// The Markdown table of the comparison on `backends`, `trials` rounds,
/// on the DDL-heavy script or on `folder`.
pub(crate) async fn run(
    backends: &[Backend],
    trials: usize,
    folder: Option<&std::path::Path>,
) -> Result<String> {
    let migrator: &'static stowage::Migrator = match folder {
        Some(path) => {
            let dir = stowage_tests::dir_at(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Box::leak(Box::new(stowage::Migrator::from_dir(&dir)?))
        }
        None => &DDL,
    };
    let what = match folder {
        Some(path) => format!("the migrations of {}", path.display()),
        None => "the DDL-heavy script (40 tables with foreign keys, 30 indexes)".to_owned(),
    };
    let mut out = format!(
        "Reading the schema of {what}, \
         connecting included: median of {trials} trials; the ratio is the median of the \
         per-trial ratios to the database's own dump tool. Drift builds the expected schema in a \
         scratch database, or, with the schema snapshot embedded, reads it from the binary.\n\n\
         | backend | version | tables | objects | native dump tool | `Migrator::dump` | × native | `Migrator::drift` | drift with the snapshot |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for &backend in backends {
        let db = fresh(backend).await?;
        let version = match folder {
            Some(_) => apply_folder(backend, &db, migrator).await?.to_string(),
            None => {
                apply(Applier::Stowage, &db).await?;
                "head".to_owned()
            }
        };
        let (_, text) = stowage(&db, migrator, Read::Snapshot).await?;
        let snapshotted = migrator.clone().with_schema_snapshot(text);
        let (mut native, mut dumps, mut drifts, mut snapshots) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut objects, mut tables) = (0, String::new());
        for trial in 0..trials {
            let started = Instant::now();
            native_dump(&db)?;
            native.push(started.elapsed());
            let started = Instant::now();
            (objects, tables) = stowage(&db, migrator, Read::Dump).await?;
            dumps.push(started.elapsed());
            for (with, times, snapshot) in [
                (migrator, &mut drifts, "false"),
                (&snapshotted, &mut snapshots, "true"),
            ] {
                let started = Instant::now();
                let (differences, from_snapshot) = stowage(&db, with, Read::Drift(with)).await?;
                times.push(started.elapsed());
                if differences != 0 || from_snapshot != snapshot {
                    return Err(format!(
                        "{backend:?}: drift found {differences} differences (from the snapshot: \
                         {from_snapshot})"
                    )
                    .into());
                }
            }
            eprintln!("{backend:?} trial {trial}: dump {:.2?}", dumps[trial]);
        }
        let ms = |samples: &[Duration]| median(samples.to_vec()).as_secs_f64() * 1e3;
        out.push_str(&format!(
            "| {backend:?} | {version} | {tables} | {objects} | {:.0} ms | {:.0} ms | {:.2}× | {:.0} ms | {:.0} ms |\n",
            ms(&native),
            ms(&dumps),
            median_ratio(&dumps, &native),
            ms(&drifts),
            ms(&snapshots),
        ));
        db.drop_it().await?;
    }
    Ok(out)
}
