//! The schema the migrations build ([`Migrator::expected_schema`]), and
//! the live schema held against it ([`Migrator::drift`]).

use super::{Difference, Schema};
use crate::engine::connection::Database;
use crate::{ConnectOptions, Dialect, Error, Migrator, Target};
use std::time::Duration;

/// What [`Migrator::drift`] found: the database's version and how its
/// schema differs from the one the migrations build at that version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Drift {
    /// The newest version applied (`None`: nothing applied).
    pub version: Option<i64>,
    /// Every difference, missing, unexpected or changed, per object.
    pub differences: Vec<Difference>,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self
            .version
            .map_or_else(|| "no migration".to_owned(), |v| format!("version {v}"));
        if self.differences.is_empty() {
            return write!(f, "no drift: the schema is the one the migrations build at {at}");
        }
        for difference in &self.differences {
            writeln!(f, "{difference}")?;
        }
        let n = self.differences.len();
        write!(
            f,
            "{n} difference{} from the schema the migrations build at {at}",
            if n == 1 { "" } else { "s" }
        )
    }
}

/// A name for a scratch database no other process picks.
fn scratch_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("stowage_scratch_{}_{nanos}", std::process::id())
}

impl Migrator {
    /// The schema this binary's migrations build at `target`
    /// ([`Target::Head`], [`Target::Version`] or [`Target::Base`], which
    /// is empty): applied to a scratch database, read, and dropped. On
    /// SQLite the scratch database is a file in the temporary folder; on
    /// PostgreSQL and MySQL it is created on the server of `server` (a URL
    /// whose user may create databases: the application's own, or a
    /// development server of the same version), under a name of its own.
    /// Feature `any`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] for [`Target::Steps`]; [`Error::Connect`]
    /// when the scratch database cannot be created or reached; the errors
    /// of [`Migrator::run_to`] and [`Migrator::dump`].
    pub async fn expected_schema(&self, server: &str, target: Target) -> Result<Schema, Error> {
        let dialect = crate::connect::dialect_of_url(server)?;
        let version = match target {
            Target::Base => return Ok(Schema::new(dialect, Vec::new())),
            Target::Head => None,
            Target::Version(version) => Some(version),
            Target::Steps(_) => {
                return Err(Error::InvalidTarget(
                    "the expected schema is that of a version, the head or the base, not of steps"
                        .to_owned(),
                ));
            }
        };
        let name = scratch_name();
        let file = std::env::temp_dir().join(format!("{name}.db"));
        let scratch = match dialect {
            Dialect::Sqlite => format!("sqlite://{}?mode=rwc", file.display()),
            _ => crate::connect::with_database(server, &name),
        };
        let options = ConnectOptions::default()
            .timeout(Duration::from_secs(10))
            .say_waiting(false)
            .log_statements(false)
            .create_database(true);
        let pool: sqlx::AnyPool = crate::connect_with(&scratch, options).await?;
        let built = async {
            match version {
                Some(version) => self.run_to(&pool, version).await?,
                None => self.run(&pool).await?,
            };
            self.dump(&pool).await
        }
        .await;
        pool.close().await;
        let dropped = match dialect {
            Dialect::Sqlite => std::fs::remove_file(&file).map_err(|error| error.to_string()),
            _ => {
                use sqlx::migrate::MigrateDatabase;
                sqlx::Any::drop_database(&scratch)
                    .await
                    .map_err(|error| error.to_string())
            }
        };
        if let Err(error) = dropped {
            let database = crate::connect::redact(&scratch);
            tracing::warn!(%error, %database, "cannot remove the scratch database");
        }
        built
    }

    /// The live schema against the one this binary's migrations build at
    /// the database's own version (read-only: takes no lock); the scratch
    /// database for the latter is made on `server`, as
    /// [`expected_schema`](Self::expected_schema) says. Feature `any`.
    ///
    /// ```no_run
    /// # static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("migrations");
    /// # async fn check(pool: &sqlx::AnyPool, url: &str) -> Result<(), stowage::Error> {
    /// let drift = MIGRATOR.drift(pool, url).await?;
    /// for difference in &drift.differences {
    ///     eprintln!("{difference}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The errors of [`Migrator::status`], [`Migrator::dump`] and
    /// [`expected_schema`](Self::expected_schema).
    pub async fn drift<'a>(&self, db: impl Database<'a>, server: &str) -> Result<Drift, Error> {
        let mut conn = db
            .connect()
            .await
            .map_err(Error::db("cannot connect to the database"))?;
        let version = self.status(&mut conn).await?.current;
        let live = self.dump(&mut conn).await?;
        let target = version.map_or(Target::Base, Target::Version);
        let expected = self.expected_schema(server, target).await?;
        Ok(Drift {
            version,
            differences: live.diff(&expected),
        })
    }
}
