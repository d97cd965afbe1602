//! [`Migrator::undo`]: revert applied migrations, newest first.

use super::{Session, Target};
use crate::engine::connection::{Conn, Database};
use crate::engine::history::{HistoryRow, RowState, Table, sha256};
use crate::engine::lock::{Locked, Settings, lock, unlock};
use crate::engine::sql_dialect::Under;
use crate::engine::run::refuse_unsupported;
use crate::report::Applied;
use crate::{Error, Migration, MigrationSet, Migrator, Report};
use std::borrow::Cow;
use std::time::Instant;

impl Migrator {
    /// Revert applied migrations, newest first, each with the removal of its
    /// history row in one transaction where the database allows it.
    ///
    /// `Target::Steps(n)` reverts the `n` newest, `Target::Version(v)` every
    /// one above `v`, `Target::Base` all of them. Before changing anything it
    /// refuses when a migration in the range has no down SQL, was applied with
    /// another checksum, or failed. A migration the binary lacks (applied by
    /// a newer one) is reverted with the down SQL its history row keeps,
    /// checked against the checksum recorded with it; one whose row keeps
    /// none is refused.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// use stowage::Target;
    ///
    /// // The newest migration; `Target::Version(v)` reverts everything above v.
    /// let report = MIGRATOR.undo(&pool, Target::Steps(1)).await?;
    /// for m in report.reverted() {
    ///     println!("reverted {} {}", m.version, m.description);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Irreversible`], [`Error::ChecksumMismatch`],
    /// [`Error::UnknownVersion`], [`Error::StoredDownModified`], [`Error::FailedMigration`],
    /// [`Error::InvalidTarget`], [`Error::UndoFailed`], and database errors.
    pub async fn undo<'a>(&self, db: impl Database<'a>, target: Target) -> Result<Report, Error> {
        let Session { conn, table, set } = self.session(db).await?;
        let span = tracing::info_span!("stowage.undo", dialect = %table.dialect(), %target);
        let work = async {
            let mut locked = lock(conn, &table, self).await?;
            let Locked { conn, hold, .. } = &mut locked;
            let settings = &hold.settings;
            let result = undo_locked(self, conn, &table, settings, set, target).await;
            locked.close_after = !matches!(&result, Ok(report) if report.reverted().is_empty());
            unlock(locked, &table, result).await
        };
        tracing::Instrument::instrument(work, span).await
    }
}

/// `undo`, under the lock.
async fn undo_locked(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    settings: &Settings,
    set: &MigrationSet,
    target: Target,
) -> Result<Report, Error> {
    let rows = table.rows_if_exists(conn).await?;
    let mut range = Vec::new();
    for migration in undo_range(conn, table, set, &rows, target).await? {
        let down = migration.down_sql().unwrap_or_default();
        let down = migrator
            .placeholders()
            .resolve(migration.source_path(), down)?;
        refuse_unsupported(table, &migration, &down)?;
        range.push(migration.with_sql(migration.up_sql().to_owned(), Some(down)));
    }
    let table = &table.pinned(conn).await?;
    let mut reverted = Vec::new();
    for migration in &range {
        let started = Instant::now();
        let under = Under {
            conn,
            table,
            settings,
        };
        table.sql.revert(under, migration).await?;
        tracing::info!(version = migration.version(), "reverted migration");
        reverted.push(Applied::of(migration, started.elapsed()));
    }
    let head = rows
        .iter()
        .map(|r| r.version)
        .filter(|v| !range.iter().any(|m| m.version() == *v))
        .max();
    Ok(Report::undone(table.dialect(), reverted, head))
}

/// The migrations `target` would revert, newest first, after checking that
/// each can be reverted: the binary's own, or for a migration it lacks, the
/// down SQL its history row keeps.
pub(super) async fn undo_range<'s>(
    conn: &mut Conn<'_>,
    table: &Table,
    set: &'s MigrationSet,
    rows: &[HistoryRow],
    target: Target,
) -> Result<Vec<Cow<'s, Migration>>, Error> {
    let mut applied: Vec<&HistoryRow> = rows.iter().collect();
    applied.sort_by_key(|r| std::cmp::Reverse(r.version));
    let chosen: Vec<&HistoryRow> = match target {
        Target::Steps(n) => applied.into_iter().take(n as usize).collect(),
        Target::Version(v) => applied.into_iter().filter(|r| r.version > v).collect(),
        Target::Base => applied,
        Target::Head => {
            return Err(Error::InvalidTarget(
                "undo takes steps, a version or `base`; `head` is where `run` goes".to_owned(),
            ));
        }
    };
    let mut range = Vec::new();
    for row in chosen {
        if row.state == RowState::Failed {
            return Err(Error::FailedMigration {
                version: row.version,
                description: row.description.clone(),
                statement: row.failed_statement,
                error: row.error.clone(),
            });
        }
        let Some(migration) = set.get(row.version) else {
            range.push(Cow::Owned(kept(conn, table, row).await?));
            continue;
        };
        if row.checksum != migration.checksum() {
            return Err(Error::ChecksumMismatch {
                version: row.version,
                source_path: migration.source_path().to_owned(),
                applied: crate::error::short_hex(&row.checksum),
                embedded: crate::error::short_hex(migration.checksum()),
            });
        }
        if migration.down_sql().is_none() {
            return Err(Error::Irreversible {
                version: row.version,
                source_path: migration.source_path().to_owned(),
            });
        }
        range.push(Cow::Borrowed(migration));
    }
    Ok(range)
}

/// A migration the binary lacks, as its history row keeps it, its down SQL
/// checked against the checksum recorded with it.
async fn kept(conn: &mut Conn<'_>, table: &Table, row: &HistoryRow) -> Result<Migration, Error> {
    let stored = match row.down_stored {
        true => table.stored_down(conn, row.version).await?,
        false => None,
    };
    let Some(down) = stored else {
        return Err(Error::UnknownVersion {
            version: row.version,
            description: row.description.clone(),
            undo_to: None,
        });
    };
    if down.checksum != sha256(&down.sql) {
        return Err(Error::StoredDownModified {
            version: row.version,
            description: row.description.clone(),
        });
    }
    Ok(Migration::stored(
        row.version,
        row.description.clone(),
        down.path,
        down.sql,
        down.no_transaction,
    ))
}
