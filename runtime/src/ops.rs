//! The operations beside `run`: `undo`, `stamp`, `status`, `verify`, `plan`
//! and `repair`.

use crate::apply::{check_policies, lock, unlock};
use crate::conn::{Conn, Database, Value};
use crate::history::{self, HistoryRow, RowState, Table};
use crate::report::Applied;
use crate::split::split;
use crate::{Dialect, Error, Migration, MigrationSet, Migrator, Report};
use std::fmt;
use std::time::Instant;

/// Where an operation should take the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// The newest embedded migration (`stamp head`, `plan` of `run`).
    Head,
    /// Exactly this version applied as the newest; everything above undone
    /// (or, for `stamp`, unrecorded).
    Version(i64),
    /// The `n` newest applied migrations undone.
    Steps(u32),
    /// Nothing applied.
    Base,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Head => f.write_str("head"),
            Target::Version(v) => write!(f, "version {v}"),
            Target::Steps(n) => write!(f, "{n} step{}", if *n == 1 { "" } else { "s" }),
            Target::Base => f.write_str("base"),
        }
    }
}

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

/// The state of one migration, as [`Migrator::status`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum MigrationState {
    /// Applied, with the checksum the binary has.
    Applied,
    /// In the binary, not applied.
    Pending,
    /// Applied with another checksum: the file changed since.
    Modified,
    /// Applied, but the binary does not have it.
    Missing,
    /// Started statement by statement and not finished.
    Failed,
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Modified => "modified",
            MigrationState::Missing => "missing",
            MigrationState::Failed => "failed",
        })
    }
}

/// One line of [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StatusEntry {
    /// The version.
    pub version: i64,
    /// The description (the binary's, or the recorded one when missing).
    pub description: String,
    /// Its state.
    pub state: MigrationState,
    /// When it was applied, as the database prints it.
    pub applied_at: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<i64>,
    /// Which host and program applied it.
    pub applied_by: Option<String>,
}

/// Every embedded and every recorded migration with its state; `Display`
/// prints an aligned table, and with the `serde` feature it serialises to JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Status {
    /// The database's dialect.
    pub dialect: Dialect,
    /// Oldest first.
    pub migrations: Vec<StatusEntry>,
}

impl Status {
    /// Whether every embedded migration is applied and nothing is off.
    pub fn is_up_to_date(&self) -> bool {
        self.migrations
            .iter()
            .all(|m| m.state == MigrationState::Applied)
    }

    /// The newest applied version.
    pub fn current(&self) -> Option<i64> {
        self.migrations
            .iter()
            .filter(|m| matches!(m.state, MigrationState::Applied | MigrationState::Modified))
            .map(|m| m.version)
            .max()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 5]> = self
            .migrations
            .iter()
            .map(|m| {
                [
                    m.version.to_string(),
                    m.state.to_string(),
                    m.applied_at.clone().unwrap_or_default(),
                    m.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
                    m.description.clone(),
                ]
            })
            .collect();
        let header = [
            "VERSION",
            "STATE",
            "APPLIED AT (UTC)",
            "TOOK",
            "DESCRIPTION",
        ];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: [&str; 5]| {
            writeln!(
                f,
                "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            )
        };
        line(f, header)?;
        for row in &rows {
            line(f, [&row[0], &row[1], &row[2], &row[3], &row[4]])?;
        }
        let pending = self
            .migrations
            .iter()
            .filter(|m| m.state == MigrationState::Pending)
            .count();
        write!(
            f,
            "{} database at {}; {pending} pending",
            self.dialect,
            self.current()
                .map_or_else(|| "base".to_owned(), |v| format!("version {v}"))
        )
    }
}

/// The SQL an operation would run, in order; [`Migrator::plan`] executes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// Whether the steps apply (`true`) or revert (`false`) migrations.
    pub up: bool,
    /// The steps, in the order they would run.
    pub steps: Vec<PlanStep>,
}

/// One migration of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanStep {
    /// The version.
    pub version: i64,
    /// The description.
    pub description: String,
    /// The SQL that would run.
    pub sql: String,
    /// Whether it would run outside a transaction.
    pub no_transaction: bool,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return write!(f, "-- nothing to do");
        }
        let direction = if self.up { "up" } else { "down" };
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(
                f,
                "-- {direction} {} {}{}",
                step.version,
                step.description,
                if step.no_transaction {
                    " (no transaction)"
                } else {
                    ""
                }
            )?;
            write!(f, "{}", step.sql.trim_end())?;
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Everything an operation needs: the connection, its history table and set.
struct Session<'a, 'm> {
    conn: Conn<'a>,
    table: Table,
    set: &'m MigrationSet,
}

impl Migrator {
    async fn session<'a>(&self, db: impl Database<'a>) -> Result<Session<'a, '_>, Error> {
        let conn = db
            .connect()
            .await
            .map_err(Error::db("cannot connect to the database"))?;
        let dialect = conn.dialect();
        let set = self
            .set(dialect)
            .ok_or(Error::NoMigrationsForDialect { dialect })?;
        let table = Table::new(self.config(), dialect)?;
        Ok(Session { conn, table, set })
    }

    /// Revert applied migrations, newest first, each with the removal of its
    /// history row in one transaction where the database allows it.
    ///
    /// `Target::Steps(n)` reverts the `n` newest, `Target::Version(v)` every
    /// one above `v`, `Target::Base` all of them. Before changing anything it
    /// refuses when a migration in the range has no down SQL, was applied with
    /// another checksum, is not in the binary, or failed.
    ///
    /// # Errors
    ///
    /// [`Error::Irreversible`], [`Error::ChecksumMismatch`],
    /// [`Error::UnknownVersion`], [`Error::FailedMigration`],
    /// [`Error::InvalidTarget`], [`Error::UndoFailed`], and database errors.
    pub async fn undo<'a>(&self, db: impl Database<'a>, target: Target) -> Result<Report, Error> {
        let Session { conn, table, set } = self.session(db).await?;
        let span = tracing::info_span!("stowage.undo", dialect = %table.dialect, %target);
        let work = async {
            let mut conn = lock(conn, &table, self.config().lock_timeout).await?;
            let result = undo_locked(&mut conn, &table, set, target).await;
            unlock(conn, &table, result).await
        };
        tracing::Instrument::instrument(work, span).await
    }

    /// Record migrations as applied without running their SQL: the baseline
    /// of a database that already has its tables. `Target::Head` or
    /// `Target::Version(v)` records every embedded migration up to it and
    /// removes the rows above it; `Target::Base` removes every row.
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
        let mut conn = lock(conn, &table, self.config().lock_timeout).await?;
        let result = stamp_locked(&mut conn, &table, set, up_to).await;
        unlock(conn, &table, result).await
    }

    /// Every embedded and every recorded migration with its state. Reads
    /// only; takes no lock.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn status<'a>(&self, db: impl Database<'a>) -> Result<Status, Error> {
        let Session {
            mut conn,
            table,
            set,
        } = self.session(db).await?;
        let rows = read_rows(&mut conn, &table).await?;
        let recorded = history::by_version(&rows);
        let mut migrations: Vec<StatusEntry> = set
            .iter()
            .map(|m| {
                let row = recorded.get(&m.version());
                let state = match row {
                    None => MigrationState::Pending,
                    Some(row) if row.state == RowState::Failed => MigrationState::Failed,
                    Some(row) if row.checksum != m.checksum() => MigrationState::Modified,
                    Some(_) => MigrationState::Applied,
                };
                entry(m.version(), m.description(), state, row.copied())
            })
            .collect();
        for row in rows.iter().filter(|r| set.get(r.version).is_none()) {
            let state = if row.state == RowState::Failed {
                MigrationState::Failed
            } else {
                MigrationState::Missing
            };
            migrations.push(entry(row.version, &row.description, state, Some(row)));
        }
        migrations.sort_by_key(|m| m.version);
        Ok(Status {
            dialect: table.dialect,
            migrations,
        })
    }

    /// A read-only full check: every recorded checksum and chain value, and
    /// the policies. Returns every problem found (empty when all is well).
    ///
    /// # Errors
    ///
    /// Database errors; the problems themselves are the `Ok` value.
    pub async fn verify<'a>(&self, db: impl Database<'a>) -> Result<Vec<Error>, Error> {
        let Session {
            mut conn,
            table,
            set,
        } = self.session(db).await?;
        let rows = read_rows(&mut conn, &table).await?;
        let mut problems = check_policies(self, set, &rows);
        // A row's chain must match while every migration up to it is
        // recorded with the binary's checksum; past the first difference the
        // chains differ as a consequence, already reported.
        let recorded = history::by_version(&rows);
        for migration in set.iter() {
            let Some(row) = recorded.get(&migration.version()) else {
                break;
            };
            if row.state != RowState::Applied || row.checksum != migration.checksum() {
                break;
            }
            if row.chain != migration.chain() {
                problems.push(Error::ChainMismatch {
                    version: row.version,
                    source_path: migration.source_path().to_owned(),
                });
                break;
            }
        }
        problems.sort_by_key(problem_version);
        Ok(problems)
    }

    /// The SQL that [`run`](Self::run) (for `Target::Head`, or a version above
    /// the current one) or [`undo`](Self::undo) (for `Steps`, `Base`, or a
    /// version below the current one) would execute, in order. Executes
    /// nothing and takes no lock.
    ///
    /// # Errors
    ///
    /// As the operation it plans would refuse, and database errors.
    pub async fn plan<'a>(&self, db: impl Database<'a>, target: Target) -> Result<Plan, Error> {
        let Session {
            mut conn,
            table,
            set,
        } = self.session(db).await?;
        let rows = read_rows(&mut conn, &table).await?;
        let current = rows.iter().map(|r| r.version).max();
        let up_to = match target {
            Target::Head => Some(set.head().map_or(i64::MIN, |h| h.version)),
            Target::Version(v) if current.is_none_or(|c| v >= c) => Some(v),
            _ => None,
        };
        if let Some(up_to) = up_to {
            if let Some(problem) = check_policies(self, set, &rows).into_iter().next() {
                return Err(problem);
            }
            let steps = set
                .iter()
                .filter(|m| m.version() <= up_to && !rows.iter().any(|r| r.version == m.version()))
                .map(|m| step(m, m.up_sql()))
                .collect();
            return Ok(Plan { up: true, steps });
        }
        let range = undo_range(set, &rows, target)?;
        let steps = range
            .iter()
            .map(|m| step(m, m.down_sql().unwrap_or_default()))
            .collect();
        Ok(Plan { up: false, steps })
    }

    /// Fix the history table explicitly, under the migration lock.
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
        let mut conn = lock(conn, &table, self.config().lock_timeout).await?;
        let result = repair_locked(&mut conn, &table, set, action).await;
        unlock(conn, &table, result).await
    }
}

/// `undo`, under the lock.
async fn undo_locked(
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
    target: Target,
) -> Result<Report, Error> {
    let rows = read_rows(conn, table).await?;
    let range = undo_range(set, &rows, target)?;
    let mut reverted = Vec::new();
    for migration in &range {
        let started = Instant::now();
        revert_one(conn, table, migration).await?;
        tracing::info!(version = migration.version(), "reverted migration");
        reverted.push(Applied::of(migration, started.elapsed()));
    }
    let head = rows
        .iter()
        .map(|r| r.version)
        .filter(|v| !range.iter().any(|m| m.version() == *v))
        .max();
    Ok(Report::undone(table.dialect, reverted, head))
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
    let by = format!("stamp by {}", history::applied_by());
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
        conn.execute(
            table.insert_sql("applied", "0"),
            history::insert_values(migration, &by),
        )
        .await
        .map_err(Error::db(format!(
            "cannot stamp migration {}",
            migration.version()
        )))?;
        stamped.push(Applied::of(migration, std::time::Duration::ZERO));
    }
    for row in rows.iter().filter(|r| up_to.is_none_or(|v| r.version > v)) {
        delete_row(conn, table, row.version).await?;
    }
    tracing::info!(stamped = stamped.len(), head = ?up_to, "stamped");
    Ok(Report::new(table.dialect, stamped, up_to))
}

/// `repair`, under the lock; the number of rows changed.
async fn repair_locked(
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
    action: RepairAction,
) -> Result<usize, Error> {
    let rows = read_rows(conn, table).await?;
    match action {
        RepairAction::AcceptChecksums => {
            let mut changed = 0;
            for row in rows.iter().filter(|r| r.state == RowState::Applied) {
                let Some(migration) = set.get(row.version) else {
                    continue;
                };
                if row.checksum == migration.checksum() && row.chain == migration.chain() {
                    continue;
                }
                let sql = format!(
                    "UPDATE {} SET checksum = {}, chain = {} WHERE version = {}",
                    table.name,
                    table.param(1),
                    table.param(2),
                    table.param(3)
                );
                let values = vec![
                    Value::Bytes(migration.checksum().to_vec()),
                    Value::Bytes(migration.chain().to_vec()),
                    Value::I64(row.version),
                ];
                conn.execute(sql, values)
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

fn entry(
    version: i64,
    description: &str,
    state: MigrationState,
    row: Option<&HistoryRow>,
) -> StatusEntry {
    StatusEntry {
        version,
        description: description.to_owned(),
        state,
        applied_at: row.map(|r| r.applied_at.clone()),
        duration_ms: row.map(|r| r.duration_ms),
        applied_by: row.map(|r| r.applied_by.clone()),
    }
}

fn step(m: &Migration, sql: &str) -> PlanStep {
    PlanStep {
        version: m.version(),
        description: m.description().to_owned(),
        sql: sql.to_owned(),
        no_transaction: m.no_transaction(),
    }
}

fn problem_version(error: &Error) -> i64 {
    match error {
        Error::ChecksumMismatch { version, .. }
        | Error::UnknownVersion { version, .. }
        | Error::OutOfOrder { version, .. }
        | Error::FailedMigration { version, .. }
        | Error::ChainMismatch { version, .. } => *version,
        _ => i64::MAX,
    }
}

/// The history rows, or none when the table does not exist yet.
async fn read_rows(conn: &mut Conn<'_>, table: &Table) -> Result<Vec<HistoryRow>, Error> {
    match table.rows(conn).await {
        Ok(rows) => Ok(rows),
        Err(Error::Database { source, .. }) if history::is_undefined_table(&source) => {
            Ok(Vec::new())
        }
        Err(error) => Err(error),
    }
}

/// The migrations `target` would revert, newest first, after checking that
/// each can be reverted.
fn undo_range<'s>(
    set: &'s MigrationSet,
    rows: &[HistoryRow],
    target: Target,
) -> Result<Vec<&'s Migration>, Error> {
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
            return Err(Error::UnknownVersion {
                version: row.version,
                description: row.description.clone(),
            });
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
        range.push(migration);
    }
    Ok(range)
}

async fn delete_row(conn: &mut Conn<'_>, table: &Table, version: i64) -> Result<(), Error> {
    let sql = format!(
        "DELETE FROM {} WHERE version = {}",
        table.name,
        table.param(1)
    );
    conn.execute(sql, vec![Value::I64(version)])
        .await
        .map_err(Error::db(format!(
            "cannot delete the history row of migration {version}"
        )))?;
    Ok(())
}

/// Run one migration's down SQL and remove its history row.
async fn revert_one(conn: &mut Conn<'_>, table: &Table, m: &Migration) -> Result<(), Error> {
    let down = m.down_sql().unwrap_or_default();
    let delete = format!("DELETE FROM {} WHERE version = {}", table.name, m.version());
    let failed = |statement: Option<usize>| {
        move |source| Error::UndoFailed {
            version: m.version(),
            source_path: m.source_path().to_owned(),
            statement: statement.and_then(|s| i64::try_from(s).ok()),
            source,
        }
    };
    match (table.dialect, m.no_transaction()) {
        (Dialect::Postgres, false) => {
            if let Err(error) = conn
                .script(format!("BEGIN;\n{down}\n;\n{delete};\nCOMMIT;"))
                .await
            {
                conn.script("ROLLBACK".to_owned())
                    .await
                    .map_err(Error::db("cannot roll back"))?;
                return Err(failed(None)(error));
            }
            Ok(())
        }
        (Dialect::Sqlite, false) => {
            match conn
                .script(format!(
                    "SAVEPOINT stowage_undo;\n{down}\n;\n{delete};\nRELEASE stowage_undo;"
                ))
                .await
            {
                Ok(()) => Ok(()),
                Err(error) => {
                    conn.script("ROLLBACK TO stowage_undo; RELEASE stowage_undo;".to_owned())
                        .await
                        .map_err(Error::db("cannot roll back"))?;
                    Err(failed(None)(error))
                }
            }
        }
        _ => {
            crate::lock::suspend(conn, table).await?;
            let mut result = Ok(());
            for (index, statement) in split(down, table.dialect).into_iter().enumerate() {
                if let Err(error) = conn.script(statement.to_owned()).await {
                    result = Err(failed(Some(index))(error));
                    break;
                }
            }
            if result.is_ok() {
                result = conn.script(delete).await.map_err(failed(None));
            }
            crate::lock::resume(conn, table).await?;
            result
        }
    }
}
