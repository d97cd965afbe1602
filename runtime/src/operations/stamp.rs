//! [`Migrator::stamp`]: record migrations as applied without running them.

use super::{Session, Target, delete_row};
use crate::engine::connection::{Conn, Database};
use crate::engine::history::{self, Entry, RowState, Table, Took};
use crate::engine::lock::{lock, unlock};
use crate::report::Applied;
use crate::{Error, MigrationSet, Migrator, Report};

impl Migrator {
    /// Record migrations as applied without running their SQL: the baseline
    /// of a database that already has its tables. `Target::Head` or
    /// `Target::Version(v)` records every embedded migration up to it and
    /// removes the rows above it; `Target::Base` removes every row.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// use stowage::Target;
    ///
    /// // A database whose schema was made before stowage, by migrations 1 and 2:
    /// // record them as applied (their SQL is not run), then apply the rest.
    /// MIGRATOR.stamp(&pool, Target::Version(2)).await?;
    /// let report = MIGRATOR.run(&pool).await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] for `Target::Steps` or an unknown version, and
    /// database errors.
    pub async fn stamp<'a>(&self, db: impl Database<'a>, target: Target) -> Result<Report, Error> {
        let Session { conn, table, set } = self.session(db).await?;
        let up_to = match target {
            Target::Head => set.head().map(|h| h.version),
            Target::Version(v) if set.get(v).is_some() => Some(v),
            Target::Base => None,
            Target::Version(v) => {
                return Err(Error::InvalidTarget(format!(
                    "version {v} is not an embedded migration; stamp `head`, `base` or one of the binary's versions"
                )));
            }
            Target::Steps(_) => {
                return Err(Error::InvalidTarget(
                    "stamp takes `head`, `base` or a version, not steps".to_owned(),
                ));
            }
        };
        let mut locked = lock(conn, &table, self).await?;
        let result = stamp_locked(&mut locked.conn, &table, set, up_to).await;
        unlock(locked, &table, result).await
    }
}

/// `stamp`, under the lock: record every embedded migration up to `up_to`
/// (none for `None`) as applied, and remove the rows above it.
async fn stamp_locked(
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
    up_to: Option<i64>,
) -> Result<Report, Error> {
    table.ensure(conn).await?;
    let rows = table.rows(conn).await?;
    let recorded = history::by_version(&rows);
    let by = format!(
        "{}{}",
        crate::operations::status::STAMPED_BY,
        history::applied_by()
    );
    let mut stamped = Vec::new();
    for migration in set
        .iter()
        .filter(|m| up_to.is_some_and(|v| m.version() <= v))
    {
        match recorded.get(&migration.version()) {
            Some(row) if row.state == RowState::Applied => continue,
            Some(_) => delete_row(conn, table, migration.version()).await?,
            None => {}
        }
        let entry = Entry::of(migration, &by);
        conn.execute(
            table.insert_sql(&entry, RowState::Applied, Took::Ms(0)),
        )
        .await
        .map_err(Error::db(format!(
            "cannot stamp migration {}",
            migration.version()
        )))?;
        stamped.push(Applied::of(migration, std::time::Duration::ZERO));
    }
    let mut unrecorded = Vec::new();
    for row in rows.iter().filter(|r| up_to.is_none_or(|v| r.version > v)) {
        delete_row(conn, table, row.version).await?;
        unrecorded.push(Applied {
            version: row.version,
            description: row.description.clone(),
            duration: std::time::Duration::ZERO,
            repeatable: false,
        });
    }
    tracing::info!(stamped = stamped.len(), unrecorded = unrecorded.len(), head = ?up_to, "stamped");
    Ok(Report::new(table.dialect(), stamped, up_to).with_unrecorded(unrecorded))
}
