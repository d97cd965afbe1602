//! [`Migrator::run`]: bring a database up to date.

use super::callbacks::Work;
use super::connection::{Cell, Conn, Database};
use super::history::{self, HistoryRow, RowState, Table};
use super::lock::{Locked, Settings, lock, unlock};
use super::sql_dialect::Under;
use crate::error::short_hex;
use crate::{Error, Event, Migration, MigrationSet, Migrator, Policy, Report};
use std::time::Instant;
use tracing::Instrument;

impl Migrator {
    /// Apply every pending migration.
    ///
    /// When the database is up to date this costs one query: the newest row
    /// of the history table, whose chain value vouches for every migration up
    /// to it. Otherwise stowage takes the migration lock (so that replicas
    /// starting together apply each migration once), checks the history
    /// against the binary, and applies what is pending, each migration with
    /// its history row in one transaction where the database allows it.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// let report = MIGRATOR.run(&pool).await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// When the database and the binary disagree ([`Error::ChecksumMismatch`],
    /// [`Error::UnknownVersion`], [`Error::OutOfOrder`], [`Error::FailedMigration`]),
    /// when a migration fails ([`Error::MigrationFailed`]), when another
    /// process holds the lock too long ([`Error::LockTimeout`]), and when the
    /// database cannot be reached ([`Error::Database`]).
    pub async fn run<'a>(&self, db: impl Database<'a>) -> Result<Report, Error> {
        self.run_to_inner(db, None).await
    }

    /// Apply the pending migrations up to and including `version`, which
    /// must be one of the binary's.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] for a version the binary does not have (a
    /// typo would otherwise apply nothing, or everything below it); then as
    /// [`run`](Self::run).
    pub async fn run_to<'a>(&self, db: impl Database<'a>, version: i64) -> Result<Report, Error> {
        self.run_to_inner(db, Some(version)).await
    }

    async fn run_to_inner<'a>(
        &self,
        db: impl Database<'a>,
        up_to: Option<i64>,
    ) -> Result<Report, Error> {
        let mut conn = db
            .connect()
            .await
            .map_err(Error::db("cannot connect to the database"))?;
        let dialect = conn.dialect()?;
        let span = tracing::info_span!("stowage.run", %dialect);
        async move {
            let set = self
                .set(dialect)
                .ok_or(Error::NoMigrationsForDialect { dialect })?;
            if let Some(version) = up_to
                && set.get(version).is_none()
            {
                return Err(Error::InvalidTarget(format!(
                    "version {version} is not one of this binary's {dialect} migrations (its \
                     newest is {}); nothing was applied",
                    set.head()
                        .map_or_else(|| "none".to_owned(), |head| head.version.to_string())
                )));
            }
            let table = self.table(dialect)?;
            let mut fast = up_to_date(&mut conn, &table, set).await;
            // A pooled connection the server has dropped (a restart, an idle
            // timeout, a pooler's recycling) is not a failed run: once more,
            // on a new connection.
            if let Err(Error::Database { source, .. }) = &fast
                && crate::error::is_transient(source)
                && let Some(Ok(fresh)) = conn.open_another().await
            {
                tracing::warn!(error = %source, "the connection was lost; trying a new one");
                conn = fresh;
                fast = up_to_date(&mut conn, &table, set).await;
            }
            if fast? {
                tracing::debug!(head = set.head().map(|h| h.version), "database up to date");
                return Ok(Report::new(
                    dialect,
                    Vec::new(),
                    set.head().map(|h| h.version),
                ));
            }
            let pool = conn.pool();
            let mut applied = Vec::new();
            let mut reconnects = 0;
            // The migration whose connection was lost as it ran.
            let mut in_flight = None;
            loop {
                let before = applied.len();
                let progress = (&mut applied, &mut in_flight);
                let result = match lock(conn, &table, self).await {
                    Ok(mut locked) => {
                        let Locked { conn, hold, .. } = &mut locked;
                        let settings = &hold.settings;
                        let result =
                            apply_pending(self, conn, &table, settings, set, up_to, progress).await;
                        // Migrations may have changed the session: the pool
                        // gets no part of it.
                        locked.close_after = result.is_err() || applied.len() > before;
                        unlock(locked, &table, result).await
                    }
                    Err(error) => Err(error),
                };
                // A connection lost on the way is not a failed run: the run
                // starts again from the lock on a new one, and reads under
                // it what the lost one left.
                let again = reconnects < RECONNECTS;
                match (result, &pool) {
                    (Err(error), Some(pool)) if again && lost_connection(&error) => {
                        reconnects += 1;
                        tracing::warn!(%error, "the connection was lost; starting again");
                        conn = pool
                            .acquire()
                            .await
                            .map_err(Error::db("cannot connect to the database again"))?;
                    }
                    (result, _) => {
                        return result.map(|(head, beside)| {
                            Report::new(dialect, applied, head).with_beside(beside)
                        });
                    }
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// How many times a run starts again after losing its connection.
const RECONNECTS: u32 = 3;

/// Whether a run that failed with `error` may start again on a new
/// connection: the connection was lost in one of stowage's own statements,
/// or by the network in a migration that ran in a transaction (which the
/// server then rolled back, or committed whole with its history row).
fn lost_connection(error: &Error) -> bool {
    match error {
        Error::Database { source, .. } => crate::error::is_connection_lost(source),
        Error::MigrationFailed {
            transactional: true,
            source: source @ (sqlx::Error::Io(_) | sqlx::Error::Protocol(_)),
            ..
        } => crate::error::is_connection_lost(source),
        _ => false,
    }
}

/// The fast path: one query, no lock, no DDL.
async fn up_to_date(conn: &mut Conn<'_>, table: &Table, set: &MigrationSet) -> Result<bool, Error> {
    let repeatables = match set.repeatables() {
        [] => None,
        _ => Some(table.repeatables()?),
    };
    let nothing_to_do = set.is_empty() && set.repeatables().is_empty();
    match conn
        .fetch(
            table.head_sql(repeatables.as_ref()),
            &Table::HEAD_TYPES,
        )
        .await
    {
        Ok(rows) => {
            let version = |row: &[Cell]| row.first().and_then(Cell::i64);
            let matches = |row: &[Cell], version_of: i64, value: &[u8]| {
                version(row) == Some(version_of)
                    && row.get(1).map(Cell::bytes) == Some(value)
                    && row.get(2).and_then(Cell::text) == Some("applied")
            };
            let head_row = rows.iter().find(|row| version(row).is_some_and(|v| v >= 0));
            let head_ok = match (set.head(), head_row) {
                (None, None) => true,
                (Some(head), Some(row)) => matches(row, head.version, &head.chain),
                _ => false,
            };
            // Each repeatable migration recorded with the checksum it has now.
            let repeatables_ok = set.repeatables().iter().all(|r| {
                rows.iter()
                    .any(|row| matches(row, r.version(), r.checksum()))
            });
            Ok(head_ok && repeatables_ok)
        }
        Err(error) if table.is_undefined(&error) => Ok(nothing_to_do),
        Err(error) => Err(Error::db(format!(
            "cannot read the history table {}",
            table.name
        ))(error)),
    }
}

/// The version this binary's `down --to` can go back to, undoing what it
/// lacks from the down SQL the history keeps: its own head, when every row
/// above it keeps its down SQL (and none it lacks lies below).
pub(crate) fn undo_to(set: &MigrationSet, rows: &[HistoryRow]) -> Option<i64> {
    let head = set.head().map_or(0, |h| h.version);
    let lacking = rows.iter().filter(|r| set.get(r.version).is_none());
    let mut undoable = true;
    for row in lacking {
        undoable &= row.version > head && row.down_stored;
    }
    undoable.then_some(head)
}

/// Compare the history with the binary: the errors that stop a run.
pub(crate) fn check_policies(
    migrator: &Migrator,
    set: &MigrationSet,
    rows: &[HistoryRow],
) -> Vec<Error> {
    let config = migrator.config();
    let mut problems = Vec::new();
    let newest_applied = rows.iter().map(|r| r.version).max();
    let recorded = history::by_version(rows);
    for row in rows {
        if row.state == RowState::Failed {
            problems.push(Error::FailedMigration {
                version: row.version,
                description: row.description.clone(),
                statement: row.failed_statement,
                error: row.error.clone(),
            });
            continue;
        }
        match set.get(row.version) {
            // A newer binary's migration that this one works beside.
            None if row.compatible => {}
            None => {
                let error = Error::UnknownVersion {
                    version: row.version,
                    description: row.description.clone(),
                    undo_to: undo_to(set, rows),
                };
                allow_or_push(config.on_missing, error, &mut problems);
            }
            Some(migration) if row.checksum != migration.checksum() => {
                let error = Error::ChecksumMismatch {
                    version: row.version,
                    source_path: migration.source_path().to_owned(),
                    applied: short_hex(&row.checksum),
                    embedded: short_hex(migration.checksum()),
                };
                allow_or_push(config.on_modified, error, &mut problems);
            }
            Some(_) => {}
        }
    }
    if let Some(newest) = newest_applied {
        for migration in set
            .iter()
            .filter(|m| m.version() < newest && !recorded.contains_key(&m.version()))
        {
            let error = Error::OutOfOrder {
                version: migration.version(),
                source_path: migration.source_path().to_owned(),
                newest_applied: newest,
            };
            allow_or_push(config.on_out_of_order, error, &mut problems);
        }
    }
    problems
}

fn allow_or_push(policy: Policy, error: Error, problems: &mut Vec<Error>) {
    match policy {
        Policy::Allow => tracing::warn!("allowed by policy: {error}"),
        _ => problems.push(error),
    }
}

/// The slow path, under the lock: what it applies goes into `applied`, and
/// the version it is applying into `in_flight` (a run started again after
/// losing its connection counts that migration as applied when the server
/// committed it); the newest version applied after it, and the newer
/// compatible migrations the binary lacks and runs beside.
async fn apply_pending(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    settings: &Settings,
    set: &MigrationSet,
    up_to: Option<i64>,
    (applied, in_flight): (&mut Vec<crate::report::Applied>, &mut Option<i64>),
) -> Result<(Option<i64>, Vec<crate::report::Applied>), Error> {
    if migrator.config().take_over {
        crate::operations::take_over_found(migrator, conn, table, set).await?;
    }
    let existing = table.read(conn).await?;
    let exists = existing.is_some();
    let rows = existing.unwrap_or_default();
    if let Some(problem) = check_policies(migrator, set, &rows).into_iter().next() {
        return Err(problem);
    }
    let recorded = history::by_version(&rows);
    if let Some(version) = in_flight.take()
        && let (Some(row), Some(migration)) = (recorded.get(&version), set.get(version))
        && row.state == RowState::Applied
        && !applied.iter().any(|a| a.version == version)
    {
        let duration = std::time::Duration::from_millis(row.duration_ms.try_into().unwrap_or(0));
        applied.push(crate::report::Applied::of(migration, duration));
    }
    let pending: Vec<&Migration> = set
        .iter()
        .filter(|m| {
            !recorded.contains_key(&m.version()) && up_to.is_none_or(|v| m.version() <= v)
        })
        .collect();
    // A database built some other way is not built upon.
    if !exists && !pending.is_empty() {
        crate::schema::check_no_schema(migrator, conn, table).await?;
    }
    // Repeatable migrations come after every versioned one: only in a run
    // that goes to the head, those that are new or changed.
    let to_head = up_to.is_none_or(|v| set.head().is_none_or(|head| v >= head.version));
    let with_repeatables = to_head && !set.repeatables().is_empty();
    let (due, repeatables_exist) = match with_repeatables {
        true => due_repeatables(conn, table, set).await?,
        false => (Vec::new(), true),
    };
    // Every placeholder and statement checked before anything changes.
    let work = Work::prepare(migrator, table, set, &pending, &due)?;
    // Created only when missing: `IF NOT EXISTS` on an existing table draws
    // a notice from PostgreSQL on every run with work.
    if !exists {
        table.ensure(conn).await?;
    } else if !work.migrations.is_empty() {
        table.upgrade(conn).await?;
    }
    let table = &table.pinned(conn).await?;
    let repeatable_table = match with_repeatables {
        true => {
            let repeatable_table = table.repeatables()?;
            if !repeatables_exist {
                repeatable_table.ensure(conn).await?;
            }
            Some(repeatable_table)
        }
        false => None,
    };
    let applied_by = history::applied_by();
    if !work.is_empty() {
        work.fire(migrator, conn, table, Event::BeforeMigrate, None, None)
            .await?;
        for migration in &work.migrations {
            *in_flight = Some(migration.version());
            applied.push(apply_one(migrator, conn, table, settings, &work, migration, &applied_by).await?);
            *in_flight = None;
        }
        if let Some(repeatable_table) = &repeatable_table {
            for repeatable in &work.repeatables {
                conn.execute(repeatable_table.delete_sql(repeatable.version()))
                    .await
                    .map_err(Error::db("cannot update the table of repeatable migrations"))?;
                applied.push(
                    apply_one(migrator, conn, repeatable_table, settings, &work, repeatable, &applied_by)
                        .await?,
                );
            }
        }
        work.fire(migrator, conn, table, Event::AfterMigrate, None, None)
            .await?;
    }
    // Rows written under other binaries (out of order, accepted checksums)
    // carry another chain value; record this binary's so the next start-up
    // takes the fast path.
    for row in &rows {
        if let Some(migration) = set.get(row.version)
            && row.chain != migration.chain()
        {
            conn.execute(table.chain_sql(row.version, migration.chain()))
            .await
            .map_err(Error::db("cannot update the history table's chain"))?;
        }
    }
    let head = set
        .iter()
        .map(Migration::version)
        .filter(|v| recorded.contains_key(v) || applied.iter().any(|a| a.version == *v))
        .max();
    let beside = rows
        .iter()
        .filter(|row| row.compatible && set.get(row.version).is_none())
        .map(|row| crate::report::Applied {
            version: row.version,
            description: row.description.clone(),
            duration: std::time::Duration::ZERO,
            repeatable: false,
        })
        .collect();
    Ok((head, beside))
}

/// The repeatable migrations that are new or changed since applied, and
/// whether their table exists.
pub(crate) async fn due_repeatables<'s>(
    conn: &mut Conn<'_>,
    table: &Table,
    set: &'s MigrationSet,
) -> Result<(Vec<&'s Migration>, bool), Error> {
    let existing = table.repeatables()?.read(conn).await?;
    let exists = existing.is_some();
    let done = existing.unwrap_or_default();
    let due = set
        .repeatables()
        .iter()
        .filter(|r| {
            !done.iter().any(|row| {
                row.version == r.version()
                    && row.checksum == r.checksum()
                    && row.state == RowState::Applied
            })
        })
        .collect();
    Ok((due, exists))
}

/// Apply one migration (versioned, or repeatable into its own table) with
/// the callbacks of each migration around it.
async fn apply_one(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    settings: &Settings,
    work: &Work,
    migration: &Migration,
    applied_by: &str,
) -> Result<crate::report::Applied, Error> {
    let each = Some(migration);
    work.fire(migrator, conn, table, Event::BeforeEachMigrate, each, None)
        .await?;
    let started = Instant::now();
    table
        .sql
        .apply(
            Under {
                conn,
                table,
                settings,
            },
            migration,
            applied_by,
        )
        .instrument(tracing::info_span!(
            "stowage.migration",
            version = migration.version()
        ))
        .await?;
    let duration = started.elapsed();
    tracing::info!(
        version = migration.version(),
        description = migration.description(),
        repeatable = migration.is_repeatable(),
        ?duration,
        "applied migration"
    );
    work.fire(migrator, conn, table, Event::AfterEachMigrate, each, Some(duration))
        .await?;
    Ok(crate::report::Applied::of(migration, duration))
}

/// [`Error::UnsupportedStatement`] for the first statement of `sql` (`m`'s
/// up or down SQL) that the dialect cannot run.
pub(crate) fn refuse_unsupported(table: &Table, m: &Migration, sql: &str) -> Result<(), Error> {
    match table.sql.unsupported(sql) {
        None => Ok(()),
        Some((statement, reason)) => Err(Error::UnsupportedStatement {
            version: m.version(),
            source_path: m.source_path().to_owned(),
            line: crate::engine::statements::line_of(sql, statement),
            excerpt: crate::error::excerpt(statement),
            reason: reason.to_owned(),
        }),
    }
}
