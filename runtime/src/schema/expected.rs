//! The schema the migrations build ([`Migrator::expected_schema`]), and
//! the live schema held against it ([`Migrator::drift`]).

use super::{Difference, Schema};
use crate::engine::connection::Database;
use crate::{ConnectOptions, Dialect, Error, Migrator, Target};
use std::ops::RangeInclusive;
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
    /// Whether the expected schema came from a schema snapshot embedded
    /// in the binary ([`Migrator::schema_snapshot`]) rather than from a
    /// scratch database.
    pub from_snapshot: bool,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut at = self
            .version
            .map_or_else(|| "no migration".to_owned(), |v| format!("version {v}"));
        if self.from_snapshot {
            at.push_str(" (as the embedded schema snapshot holds it)");
        }
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

/// A database of its own, made for one comparison and removed after it.
struct Scratch {
    pool: sqlx::AnyPool,
    url: String,
    dialect: Dialect,
    file: std::path::PathBuf,
}

impl Scratch {
    /// A new, empty database beside `server` (SQLite: a temporary file).
    async fn create(server: &str, dialect: Dialect) -> Result<Scratch, Error> {
        let name = scratch_name();
        let file = std::env::temp_dir().join(format!("{name}.db"));
        let url = match dialect {
            Dialect::Sqlite => format!("sqlite://{}?mode=rwc", file.display()),
            _ => crate::connect::with_database(server, &name),
        };
        let options = ConnectOptions::default()
            .timeout(Duration::from_secs(10))
            .say_waiting(false)
            .log_statements(false)
            .create_database(true);
        let pool = crate::connect_with(&url, options).await?;
        Ok(Scratch {
            pool,
            url,
            dialect,
            file,
        })
    }

    /// Close and remove it; a failure is only logged.
    async fn remove(self) {
        self.pool.close().await;
        let removed = match self.dialect {
            Dialect::Sqlite => std::fs::remove_file(&self.file).map_err(|e| e.to_string()),
            _ => {
                use sqlx::migrate::MigrateDatabase;
                sqlx::Any::drop_database(&self.url)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        if let Err(error) = removed {
            let database = crate::connect::redact(&self.url);
            tracing::warn!(%error, %database, "cannot remove the scratch database");
        }
    }
}

impl Migrator {
    /// The schema this binary's migrations build at `target`
    /// ([`Target::Head`], [`Target::Version`] or [`Target::Base`], which
    /// is empty): applied to a scratch database, read, and dropped. On
    /// SQLite the scratch database is a file in the temporary folder; on
    /// PostgreSQL and MySQL it is created on the server of `server` (a URL
    /// whose user may create databases: the application's own, or a
    /// development server of the same version), under a name of its own.
    /// With feature `testing`, the head's schema is read from a copy of
    /// these migrations' test-database template instead, when `server` has
    /// one (`testing::template_name` names it): no
    /// migration runs. Feature `any`.
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
        #[cfg(feature = "testing")]
        if version.is_none()
            && let Some(schema) = crate::testing::template_schema(self, server, dialect).await
        {
            return Ok(schema);
        }
        let scratch = Scratch::create(server, dialect).await?;
        let built = async {
            match version {
                Some(version) => self.run_to(&scratch.pool, version).await?,
                None => self.run(&scratch.pool).await?,
            };
            self.dump(&scratch.pool).await
        }
        .await;
        scratch.remove().await;
        built
    }

    /// The schema `sql` makes (a schema file as [`Schema::to_sql`] writes
    /// it, or any script the server takes), applied as one migration to a
    /// scratch database made on `server`, as
    /// [`expected_schema`](Self::expected_schema) does, then dropped: the
    /// desired schema of [`Schema::migration_to`]. Feature `any`.
    ///
    /// # Errors
    ///
    /// [`Error::MigrationFailed`] when the server refuses the script; the
    /// errors of [`expected_schema`](Self::expected_schema).
    pub async fn schema_of(&self, server: &str, sql: &str) -> Result<Schema, Error> {
        self.schema_of_scripts(server, &[sql]).await
    }

    /// The migration from the schema these migrations build at their head
    /// to `desired`, and its down ([`Schema::migration_to`]), with
    /// `renames` written as renames: what `migrate new --from-schema` and
    /// `--from-database` write. Both schemas are built in scratch databases
    /// on `server`, as [`expected_schema`](Self::expected_schema) says;
    /// with renames, the head's schema renamed too, so that the server
    /// decides what a rename leaves (a view's text, say) before the rest
    /// is compared. Feature `any`.
    ///
    /// ```no_run
    /// # static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("migrations");
    /// # async fn example(dev: &sqlx::AnyPool, url: &str) -> Result<(), stowage::Error> {
    /// let desired = MIGRATOR.dump(dev).await?;
    /// let renames = stowage::Renames::new().column("users", "name", "full_name");
    /// let generated = MIGRATOR.generate(url, &desired, &renames).await?;
    /// println!("{}", generated.up);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] when a rename names a table the head does
    /// not have, or one the desired schema lacks, or the server refuses
    /// it; the errors of [`expected_schema`](Self::expected_schema).
    pub async fn generate(
        &self,
        server: &str,
        desired: &Schema,
        renames: &super::Renames,
    ) -> Result<super::Generated, Error> {
        let current = self.expected_schema(server, Target::Head).await?;
        if renames.is_empty() {
            return Ok(current.migration_to(desired));
        }
        let renames = renames.resolved(&current).map_err(Error::InvalidTarget)?;
        let up = renames.up(&current, desired).map_err(Error::InvalidTarget)?;
        let down = renames.down(&current);
        // Each side renamed on the server: what the rest is compared from.
        let mut renamed = Vec::new();
        for (schema, statements) in [(&current, &up), (desired, &down)] {
            let renaming: String = statements.iter().map(|s| format!("{s};\n")).collect();
            let built = self
                .schema_of_scripts(server, &[&schema.to_sql(), &renaming])
                .await
                .map_err(|error| {
                    Error::InvalidTarget(format!(
                        "the renames cannot be made on the schema at the head, or back on the \
                         desired one: {error}"
                    ))
                })?;
            renamed.push(built);
        }
        Ok(super::generate::compose(
            [&renamed[0], desired],
            [&renamed[1], &current],
            [&up, &down],
            renames.said(),
        ))
    }

    /// The schema the scripts make, applied in order as migrations to a
    /// scratch database on `server`.
    async fn schema_of_scripts(&self, server: &str, scripts: &[&str]) -> Result<Schema, Error> {
        let dialect = crate::connect::dialect_of_url(server)?;
        let entries: Vec<stowage_layout::Entry> = scripts
            .iter()
            .enumerate()
            .map(|(i, sql)| stowage_layout::Entry::File {
                name: format!("{}_desired_schema.sql", i + 1),
                bytes: sql.as_bytes().to_vec(),
            })
            .collect();
        let sets = stowage_layout::classify(&entries).map_err(|problems| Error::InvalidSource {
            problems: problems.iter().map(ToString::to_string).collect(),
        })?;
        let migrator = Migrator::owned(sets.into_iter().map(crate::MigrationSet::owned).collect())
            .with_table(self.config().table())
            .with_existing_schema(crate::Policy::Allow);
        let scratch = Scratch::create(server, dialect).await?;
        let built = async {
            migrator.run(&scratch.pool).await?;
            migrator.dump(&scratch.pool).await
        }
        .await;
        scratch.remove().await;
        built
    }

    /// The live schema against the one this binary's migrations build at
    /// the database's own version (read-only: takes no lock). That schema
    /// is the embedded schema snapshot's ([`schema_snapshot`](Self::schema_snapshot))
    /// when one was made at this version, from these migrations, on a
    /// server of the same name and major version; otherwise it is built
    /// in a scratch database made on `server`, as
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
    /// [`Error::SchemaFile`] when an embedded snapshot cannot be read; the
    /// errors of [`Migrator::status`], [`Migrator::dump`] and
    /// [`expected_schema`](Self::expected_schema).
    pub async fn drift<'a>(&self, db: impl Database<'a>, server: &str) -> Result<Drift, Error> {
        let mut conn = db
            .connect()
            .await
            .map_err(Error::db("cannot connect to the database"))?;
        let version = self.status(&mut conn).await?.current;
        let live = self.dump(&mut conn).await?;
        let snapshot = match version {
            Some(version) if !self.snapshots().is_empty() => {
                let dialect = live.dialect();
                let on = super::snapshot::server(&mut conn, dialect).await?;
                self.embedded_snapshot(dialect, version, &on)?
            }
            _ => None,
        };
        let from_snapshot = snapshot.is_some();
        let expected = match snapshot {
            Some(schema) => schema,
            None => {
                let target = version.map_or(Target::Base, Target::Version);
                self.expected_schema(server, target).await?
            }
        };
        Ok(Drift {
            version,
            differences: live.diff(&expected),
            from_snapshot,
        })
    }

    /// Record the version a database built some other way is at: its
    /// schema is compared with the one the migrations build at each
    /// version in turn (in a scratch database made on `server`, as
    /// [`expected_schema`](Self::expected_schema) says), and the version
    /// that equals it is stamped ([`Migrator::stamp`]). Consecutive
    /// versions that build the same schema (a migration that changes data
    /// only) cannot be told apart: the newest of them is stamped. Returns
    /// the versions whose schema the database has, the last one stamped;
    /// `None` for a database with no tables, where there is nothing to
    /// record (`run` applies everything). Feature `any`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] when the database already has a history;
    /// [`Error::NoMatchingVersion`], with the differences from the closest
    /// version, when none matches (nothing is recorded); the errors of
    /// [`Migrator::dump`], [`expected_schema`](Self::expected_schema) and
    /// [`Migrator::stamp`].
    pub async fn baseline<'a>(
        &self,
        db: impl Database<'a>,
        server: &str,
    ) -> Result<Option<RangeInclusive<i64>>, Error> {
        let mut conn = db
            .connect()
            .await
            .map_err(Error::db("cannot connect to the database"))?;
        if let Some(current) = self.status(&mut conn).await?.current {
            return Err(Error::InvalidTarget(format!(
                "the database already has a history (at version {current}): `baseline` is for one \
                 built without these migrations"
            )));
        }
        let versions = self.matching_versions(&mut conn, server).await?;
        if let Some(versions) = &versions {
            self.stamp(&mut conn, Target::Version(*versions.end())).await?;
        }
        Ok(versions)
    }

    /// The versions whose schema is the database's (the first run of
    /// them); `None` for a database without tables.
    pub(crate) async fn matching_versions<'a>(
        &self,
        db: impl Database<'a>,
        server: &str,
    ) -> Result<Option<RangeInclusive<i64>>, Error> {
        let live = self.dump(db).await?;
        if live.objects().is_empty() {
            return Ok(None);
        }
        let dialect = live.dialect();
        let set = self
            .set(dialect)
            .ok_or(Error::NoMigrationsForDialect { dialect })?;
        let scratch = Scratch::create(server, dialect).await?;
        let mut closest: Option<(i64, Vec<Difference>)> = None;
        let found = async {
            let mut matching: Option<RangeInclusive<i64>> = None;
            for migration in set.iter() {
                let version = migration.version();
                self.run_to(&scratch.pool, version).await?;
                let differences = live.diff(&self.dump(&scratch.pool).await?);
                match (&matching, differences.is_empty()) {
                    (None, true) => matching = Some(version..=version),
                    (Some(run), true) => matching = Some(*run.start()..=version),
                    (Some(_), false) => break,
                    (None, false) => {
                        if closest.as_ref().is_none_or(|(_, d)| differences.len() <= d.len()) {
                            closest = Some((version, differences));
                        }
                    }
                }
            }
            Ok::<_, Error>(matching)
        }
        .await;
        scratch.remove().await;
        match found? {
            Some(versions) => Ok(Some(versions)),
            None => Err(Error::NoMatchingVersion {
                closest: closest.as_ref().map(|(v, _)| *v),
                differences: closest
                    .map(|(_, d)| d.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
            }),
        }
    }
}
