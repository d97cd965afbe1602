//! Reading a schema: `Migrator::dump` against the database's own dump tool
//! (`pg_dump --schema-only`, `mariadb-dump --no-data`, sqlite3's
//! `.schema`) on the DDL-heavy schema of `ddl.rs` (40 tables with foreign
//! keys, 30 indexes), and `Migrator::drift`, which also builds the
//! expected schema in a scratch database (or, given the schema snapshot,
//! reads it from the binary). Connecting included.

use crate::ddl::{Applier, DDL, apply, mysql_parts};
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
    /// `Migrator::dump`: the number of objects.
    Dump,
    /// `Migrator::drift` with this migrator: the number of differences.
    Drift(&'a stowage::Migrator),
    /// `Migrator::schema_snapshot`: its text.
    Snapshot,
}

/// `read` on a connection of its own.
async fn stowage(db: &Fresh, read: Read<'_>) -> Result<(usize, String)> {
    macro_rules! on {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(&db.url).await?;
            let n = match read {
                Read::Dump => (DDL.dump(&mut c).await?.objects().len(), String::new()),
                Read::Drift(migrator) => {
                    let drift = migrator.drift(&mut c, &db.url).await?;
                    (drift.differences.len(), format!("{}", drift.from_snapshot))
                }
                Read::Snapshot => (0, DDL.schema_snapshot(&mut c).await?),
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

/// The Markdown table of the comparison on `backends`, `trials` rounds.
pub(crate) async fn run(backends: &[Backend], trials: usize) -> Result<String> {
    let mut out = format!(
        "Reading the schema of the DDL-heavy script (40 tables with foreign keys, 30 indexes), \
         connecting included: median of {trials} trials; the ratio is the median of the \
         per-trial ratios to the database's own dump tool. Drift builds the expected schema in a \
         scratch database, or, with the schema snapshot embedded, reads it from the binary.\n\n\
         | backend | objects | native dump tool | `Migrator::dump` | × native | `Migrator::drift` | drift with the snapshot |\n\
         |---|---:|---:|---:|---:|---:|---:|\n"
    );
    for &backend in backends {
        let db = fresh(backend).await?;
        apply(Applier::Stowage, &db).await?;
        let (_, text) = stowage(&db, Read::Snapshot).await?;
        let snapshotted = DDL.clone().with_schema_snapshot(text);
        let (mut native, mut dumps, mut drifts, mut snapshots) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut objects = 0;
        for trial in 0..trials {
            let started = Instant::now();
            native_dump(&db)?;
            native.push(started.elapsed());
            let started = Instant::now();
            objects = stowage(&db, Read::Dump).await?.0;
            dumps.push(started.elapsed());
            for (migrator, times, snapshot) in [
                (&DDL, &mut drifts, "false"),
                (&snapshotted, &mut snapshots, "true"),
            ] {
                let started = Instant::now();
                let (differences, from_snapshot) = stowage(&db, Read::Drift(migrator)).await?;
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
            "| {backend:?} | {objects} | {:.0} ms | {:.0} ms | {:.2}× | {:.0} ms | {:.0} ms |\n",
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
