//! [`check_schema_file`]: the schema the migrations build, kept as a file
//! in the repository beside them, where a reviewer sees what a migration
//! does to it; [`check_schema_snapshot`]: the same schema as the snapshot
//! [`Migrator::drift`] uses.

use super::TestDb;
use crate::{Error, Migrator};
use std::path::Path;

/// The variable that has [`check_schema_file`] write the file instead.
pub const UPDATE_VAR: &str = "STOWAGE_UPDATE_SCHEMA";

/// Check that the file at `path` holds the schema `migrator` builds at its
/// head, as [`Schema::to_sql`](crate::Schema::to_sql) writes it: the
/// migrations are applied to a test database on the server from the
/// environment ([`TestDb::new`]; SQLite without one), and its schema read
/// back. With `STOWAGE_UPDATE_SCHEMA=1` set, the file is written instead.
/// A relative `path` is from the current folder (the crate's, under
/// `cargo test`).
///
/// ```no_run
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("migrations");
///
/// #[tokio::test]
/// async fn schema_sql_is_current() {
///     stowage::testing::check_schema_file(&MIGRATOR, "schema.sql").await.unwrap();
/// }
/// ```
///
/// # Errors
///
/// [`Error::SchemaFile`], with the differences, when the file is missing
/// or holds another schema (or cannot be written); the errors of
/// [`TestDb::new`] and [`Migrator::dump`].
pub async fn check_schema_file(migrator: &Migrator, path: impl AsRef<Path>) -> Result<(), Error> {
    let db = TestDb::new(migrator).await?;
    let pool: sqlx::AnyPool = db.pool().await?;
    let built = migrator.dump(&pool).await;
    pool.close().await;
    check_file(path.as_ref(), &built?.to_sql())
}

/// Check that `folder` holds the schema snapshot of the schema `migrator`
/// builds at its head ([`Migrator::schema_snapshot`]), as
/// `schema.<dialect>.snapshot` (`schema.postgres.snapshot`,
/// `schema.mysql.snapshot`, `schema.sqlite.snapshot`): the migrations are
/// applied to a test database on the server from the environment
/// ([`TestDb::new`]; SQLite without one), and the snapshot read there.
/// With `STOWAGE_UPDATE_SCHEMA=1` set, the file is written instead. Keep
/// `folder` the migrations folder, where `embed_migrations!` embeds the
/// file for [`Migrator::drift`]; and run the check on a server of the
/// name and major version the application's runs, since `drift` uses a
/// snapshot only there.
///
/// ```no_run
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("migrations");
///
/// #[tokio::test]
/// async fn schema_snapshot_is_current() {
///     stowage::testing::check_schema_snapshot(&MIGRATOR, "migrations").await.unwrap();
/// }
/// ```
///
/// # Errors
///
/// [`Error::SchemaFile`], with the differences, when the file is missing
/// or holds another snapshot (or cannot be written); the errors of
/// [`TestDb::new`] and [`Migrator::schema_snapshot`].
pub async fn check_schema_snapshot(
    migrator: &Migrator,
    folder: impl AsRef<Path>,
) -> Result<(), Error> {
    let db = TestDb::new(migrator).await?;
    let path = folder
        .as_ref()
        .join(crate::schema::snapshot_file_name(db.dialect()));
    let pool: sqlx::AnyPool = db.pool().await?;
    let built = migrator.schema_snapshot(&pool).await;
    pool.close().await;
    check_file(&path, &built?)
}

/// Compare the file at `path` with `built`, or write it with
/// `STOWAGE_UPDATE_SCHEMA=1`.
fn check_file(path: &Path, built: &str) -> Result<(), Error> {
    let shown = path.display().to_string();
    let update = std::env::var_os(UPDATE_VAR).is_some_and(|value| value != "0");
    let again = format!("run the test again with {UPDATE_VAR}=1 to write it");
    if update {
        return std::fs::write(path, built).map_err(|error| Error::SchemaFile {
            path: shown,
            problem: format!("cannot be written: {error}"),
        });
    }
    let kept = match std::fs::read_to_string(path) {
        Ok(kept) => kept,
        Err(error) => {
            let problem = match error.kind() {
                std::io::ErrorKind::NotFound => format!("does not exist; {again}"),
                _ => format!("cannot be read ({error}); {again}"),
            };
            return Err(Error::SchemaFile {
                path: shown,
                problem,
            });
        }
    };
    if kept == built {
        return Ok(());
    }
    let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
    let (kept, built) = (lines(&kept), lines(built));
    let mut differences: Vec<String> = kept
        .iter()
        .filter(|line| !built.contains(line))
        .map(|line| format!("- {line}"))
        .collect();
    differences.extend(
        built
            .iter()
            .filter(|line| !kept.contains(line))
            .map(|line| format!("+ {line}")),
    );
    if differences.is_empty() {
        differences.push("(the same lines, in another order)".to_owned());
    }
    Err(Error::SchemaFile {
        path: shown,
        problem: format!(
            "is not the schema the migrations build (- the file, + the migrations):\n{}\n{again}",
            differences.join("\n")
        ),
    })
}
