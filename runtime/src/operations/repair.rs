//! [`Migrator::repair`]: explicit fixes of the history table.

use super::{Session, delete_row};
use crate::engine::connection::{Conn, Database};
use crate::engine::history::{RowState, Table};
use crate::engine::lock::{lock, unlock};
use crate::{Error, MigrationSet, Migrator};

/// An explicit fix of the history table, for [`Migrator::repair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RepairAction {
    /// Record the binary's checksum (and chain) for every applied migration
    /// whose file was changed on purpose.
    AcceptChecksums,
    /// Delete the `failed` row of this version, after the database was fixed
    /// by hand; the next `run` applies the migration again.
    ClearFailed(i64),
}

impl Migrator {
    /// Fix the history table explicitly, under the migration lock.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// use stowage::RepairAction;
    ///
    /// // Migration 3 failed part-way outside a transaction; its statements
    /// // were undone by hand. Clear its row so that `run` applies it again.
    /// let changed = MIGRATOR.repair(&pool, RepairAction::ClearFailed(3)).await?;
    /// assert_eq!(changed, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] when another process migrates,
    /// [`Error::InvalidTarget`] when there is nothing to repair, and database
    /// errors.
    pub async fn repair<'a>(
        &self,
        db: impl Database<'a>,
        action: RepairAction,
    ) -> Result<usize, Error> {
        let Session { conn, table, set } = self.session(db).await?;
        let mut locked = lock(conn, &table, self).await?;
        let result = repair_locked(&mut locked.conn, &table, set, action).await;
        unlock(locked, &table, result).await
    }
}

/// `repair`, under the lock; the number of rows changed.
async fn repair_locked(
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
    action: RepairAction,
) -> Result<usize, Error> {
    let rows = table.rows_if_exists(conn).await?;
    match action {
        RepairAction::AcceptChecksums => {
            // A row's chain value vouches for every migration up to it, and
            // the run's one-query check trusts it: the binary's goes only on
            // rows whose history below holds exactly the binary's list (no
            // migration the binary lacks, none it has left unapplied). The
            // others keep theirs, so `run` still stops where `verify` does.
            let recorded: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.version).collect();
            let vouched = |version: i64| {
                recorded.range(..=version).copied().eq(set
                    .iter()
                    .map(crate::Migration::version)
                    .take_while(|v| *v <= version))
            };
            let mut changed = 0;
            for row in rows.iter().filter(|r| r.state == RowState::Applied) {
                let Some(migration) = set.get(row.version) else {
                    continue;
                };
                let chain = match vouched(row.version) {
                    true => migration.chain(),
                    false => &row.chain[..],
                };
                if row.checksum == migration.checksum() && row.chain == chain {
                    continue;
                }
                let sql = table.checksum_sql(row.version, migration.checksum(), chain);
                conn.execute(sql)
                    .await
                    .map_err(Error::db("cannot update a checksum"))?;
                tracing::warn!(
                    version = row.version,
                    "repair: accepted the binary's checksum"
                );
                changed += 1;
            }
            Ok(changed)
        }
        RepairAction::ClearFailed(version) => {
            let failed = rows
                .iter()
                .any(|r| r.version == version && r.state == RowState::Failed);
            if !failed {
                return Err(Error::InvalidTarget(format!(
                    "migration {version} has no failed row to clear; `status` lists the failed ones"
                )));
            }
            delete_row(conn, table, version).await?;
            tracing::warn!(version, "repair: cleared the failed row");
            Ok(1)
        }
    }
}
