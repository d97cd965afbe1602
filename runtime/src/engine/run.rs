//! [`Migrator::run`]: bring a database up to date.

use super::connection::{Conn, Database, Value};
use super::history::{self, HistoryRow, RowState, Table};
use super::lock::{lock, unlock};
use crate::error::short_hex;
use crate::{Error, Migration, MigrationSet, Migrator, Policy, Report};
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
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../migrations");
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

    /// Apply the pending migrations up to and including `version`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
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
            let table = Table::new(self.config(), dialect)?;
            if up_to_date(&mut conn, &table, set).await? {
                tracing::debug!(head = set.head().map(|h| h.version), "database up to date");
                return Ok(Report::new(
                    dialect,
                    Vec::new(),
                    set.head().map(|h| h.version),
                ));
            }
            let mut locked = lock(conn, &table, self.config().lock_timeout).await?;
            let result = apply_pending(self, &mut locked.conn, &table, set, up_to).await;
            // Migrations may have changed the session: the pool gets no part of it.
            locked.close_after = !matches!(&result, Ok(report) if report.applied().is_empty());
            unlock(locked, &table, result).await
        }
        .instrument(span)
        .await
    }
}

/// The fast path: one query, no lock, no DDL.
async fn up_to_date(conn: &mut Conn<'_>, table: &Table, set: &MigrationSet) -> Result<bool, Error> {
    match conn
        .fetch(table.head_sql(), Vec::new(), &Table::HEAD_TYPES)
        .await
    {
        Ok(rows) => {
            let Some(row) = rows.first() else {
                return Ok(set.is_empty());
            };
            let head = set.head();
            Ok(head.is_some_and(|head| {
                row.first().and_then(|c| c.i64()) == Some(head.version)
                    && row.get(1).map(|c| c.bytes()) == Some(&head.chain[..])
                    && row.get(2).and_then(|c| c.text()) == Some("applied")
            }))
        }
        Err(error) if table.is_undefined(&error) => Ok(set.is_empty()),
        Err(error) => Err(Error::db(format!(
            "cannot read the history table {}",
            table.name
        ))(error)),
    }
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
            None => {
                let error = Error::UnknownVersion {
                    version: row.version,
                    description: row.description.clone(),
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

/// The slow path, under the lock.
async fn apply_pending(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
    up_to: Option<i64>,
) -> Result<Report, Error> {
    if migrator.config().take_over {
        crate::operations::take_over_found(migrator, conn, table, set).await?;
    }
    table.ensure(conn).await?;
    let table = &table.pinned(conn).await?;
    let rows = table.rows(conn).await?;
    if let Some(problem) = check_policies(migrator, set, &rows).into_iter().next() {
        return Err(problem);
    }
    let recorded = history::by_version(&rows);
    let pending = set.iter().filter(|m| {
        !recorded.contains_key(&m.version()) && up_to.is_none_or(|v| m.version() <= v)
    });
    for migration in pending {
        refuse_unsupported(table, migration, migration.up_sql())?;
    }
    let applied_by = history::applied_by();
    let mut applied = Vec::new();
    for migration in set.iter() {
        if recorded.contains_key(&migration.version())
            || up_to.is_some_and(|v| migration.version() > v)
        {
            continue;
        }
        let started = Instant::now();
        table
            .sql
            .apply(conn, table, migration, &applied_by)
            .instrument(tracing::info_span!(
                "stowage.migration",
                version = migration.version()
            ))
            .await?;
        let duration = started.elapsed();
        tracing::info!(
            version = migration.version(),
            description = migration.description(),
            ?duration,
            "applied migration"
        );
        applied.push(crate::report::Applied::of(migration, duration));
    }
    // Rows written under other binaries (out of order, accepted checksums)
    // carry another chain value; record this binary's so the next start-up
    // takes the fast path.
    for row in &rows {
        if let Some(migration) = set.get(row.version)
            && row.chain != migration.chain()
        {
            let sql = format!(
                "UPDATE {} SET chain = {} WHERE version = {}",
                table.name,
                table.param(1),
                table.param(2)
            );
            conn.execute(
                sql,
                vec![
                    Value::Bytes(migration.chain().to_vec()),
                    Value::I64(row.version),
                ],
            )
            .await
            .map_err(Error::db("cannot update the history table's chain"))?;
        }
    }
    let head = set
        .iter()
        .map(Migration::version)
        .filter(|v| recorded.contains_key(v) || applied.iter().any(|a| a.version == *v))
        .max();
    Ok(Report::new(table.dialect(), applied, head))
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
