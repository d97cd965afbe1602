//! [`Migrator::status`] and [`Migrator::verify`]: the history against the binary, read-only.

use crate::engine::connection::Database;
use crate::engine::history::{self, HistoryRow, RowState};
use crate::engine::run::check_policies;
use crate::{Dialect, Error, Migrator};
use std::fmt;

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
    /// A repeatable migration applied with another checksum: the next run
    /// applies it again.
    Outdated,
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Modified => "modified",
            MigrationState::Missing => "missing",
            MigrationState::Failed => "failed",
            MigrationState::Outdated => "outdated",
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
    /// When it was applied (or started, for a failed one), in UTC, as RFC
    /// 3339 (`2026-01-01T12:00:00.123456Z`).
    pub applied_at: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<i64>,
    /// Which host and program applied it.
    pub applied_by: Option<String>,
    /// Whether it is a repeatable migration (`R__<name>.sql`), whose
    /// `version` is then its negative key; listed after the versioned ones.
    pub repeatable: bool,
    /// The binary's checksum of it (SHA-256, hex), when the binary has it.
    pub checksum: Option<String>,
    /// The checksum recorded when it was applied (hex), when it was.
    pub applied_checksum: Option<String>,
    /// For a failed one: how many of its statements completed.
    pub failed_statement: Option<i64>,
    /// For a failed one: the database's error, when recorded.
    pub error: Option<String>,
    /// Whether it was recorded by [`Migrator::stamp`] (`migrate stamp`)
    /// rather than run: its SQL may never have run here.
    pub stamped: bool,
    /// For a missing one: whether its history row keeps its down SQL, so
    /// that this binary can undo it (`migrate down --to`,
    /// [`Migrator::undo`]).
    pub undoable: bool,
    /// For a missing one: whether it was marked `-- stowage:compatible`, so
    /// that this binary runs beside it (`run` and `check` succeed).
    pub compatible: bool,
}

/// Every embedded and every recorded migration with its state; `Display`
/// prints an aligned table, and with the `serde` feature it serialises to JSON.
///
/// ```no_run
/// # async fn ready(pool: sqlx::PgPool) -> Result<bool, stowage::Error> {
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
///
/// let status = MIGRATOR.status(&pool).await?;
/// // At this binary's head, with nothing pending (as `migrate check` asks).
/// let ready = status.pending == 0 && status.current() == status.head;
/// # Ok(ready) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Status {
    /// The version of this structure's JSON form: [`Status::SCHEMA`]. A
    /// field added keeps it; a field renamed, removed or changed in meaning
    /// raises it.
    pub schema: u32,
    /// The database's dialect.
    pub dialect: Dialect,
    /// The binary's newest version for this dialect.
    pub head: Option<i64>,
    /// The newest version applied in the database.
    pub current: Option<i64>,
    /// How many migrations a run would apply (pending, and repeatable ones
    /// outdated).
    pub pending: usize,
    /// Oldest first.
    pub migrations: Vec<StatusEntry>,
}

impl Status {
    /// The version of the JSON form this build writes (`"schema": 1`).
    pub const SCHEMA: u32 = 1;

    /// Whether every embedded migration is applied and nothing is off (a
    /// newer binary's compatible migration this one lacks is not).
    pub fn is_up_to_date(&self) -> bool {
        self.migrations
            .iter()
            .all(|m| m.state == MigrationState::Applied || m.compatible)
    }

    /// The newest applied version.
    pub fn current(&self) -> Option<i64> {
        self.current
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 5]> = self
            .migrations
            .iter()
            .map(|m| {
                [
                    if m.repeatable {
                        "R".to_owned()
                    } else {
                        m.version.to_string()
                    },
                    m.state.to_string(),
                    m.applied_at.clone().unwrap_or_default(),
                    m.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
                    match m.applied_by.as_deref().and_then(imported_from) {
                        Some(tool) => format!("{} ({tool})", m.description),
                        None if m.stamped => format!("{} (stamped, not run)", m.description),
                        None if m.state == MigrationState::Missing => format!(
                            "{} ({})",
                            m.description,
                            match (m.compatible, m.undoable) {
                                (true, _) => "not in this binary; compatible: runs beside it",
                                (false, true) => "not in this binary; its kept down SQL can undo it",
                                (false, false) => "not in this binary; no down SQL kept",
                            }
                        ),
                        None => m.description.clone(),
                    },
                ]
            })
            .collect();
        let header = [
            "VERSION",
            "STATE",
            "APPLIED AT (UTC)",
            "DB TIME",
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
        write!(
            f,
            "{} database at {}; {} pending",
            self.dialect,
            self.current()
                .map_or_else(|| "base".to_owned(), |v| format!("version {v}")),
            self.pending
        )
    }
}

impl Migrator {
    /// Every embedded and every recorded migration with its state. Reads
    /// only; takes no lock.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// use stowage::MigrationState;
    ///
    /// let status = MIGRATOR.status(&pool).await?;
    /// println!("{status}"); // the table `migrate status` prints
    /// for m in status.migrations.iter().filter(|m| m.state == MigrationState::Pending) {
    ///     println!("pending: {} {}", m.version, m.description);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn status<'a>(&self, db: impl Database<'a>) -> Result<Status, Error> {
        let (mut conn, table, set, rows) = self.reading(db).await?;
        let recorded = history::by_version(&rows);
        let mut migrations: Vec<StatusEntry> = set
            .iter()
            .map(|m| {
                let row = recorded.get(&m.version()).copied();
                let state = state_of(m, row, MigrationState::Modified);
                StatusEntry {
                    checksum: Some(crate::dialect::hex(m.checksum())),
                    ..entry(m.version(), m.description(), state, row)
                }
            })
            .collect();
        for row in rows.iter().filter(|r| set.get(r.version).is_none()) {
            let state = if row.state == RowState::Failed {
                MigrationState::Failed
            } else {
                MigrationState::Missing
            };
            migrations.push(StatusEntry {
                undoable: state == MigrationState::Missing && row.down_stored,
                compatible: state == MigrationState::Missing && row.compatible,
                ..entry(row.version, &row.description, state, Some(row))
            });
        }
        if !set.repeatables().is_empty() {
            let repeatable_rows = table.repeatables()?.rows_if_exists(&mut conn).await?;
            let recorded = history::by_version(&repeatable_rows);
            for r in set.repeatables() {
                let row = recorded.get(&r.version()).copied();
                let state = state_of(r, row, MigrationState::Outdated);
                migrations.push(StatusEntry {
                    repeatable: true,
                    checksum: Some(crate::dialect::hex(r.checksum())),
                    ..entry(r.version(), r.description(), state, row)
                });
            }
        }
        // Versioned by version, then repeatable ones by description.
        let key = |m: &StatusEntry| (m.repeatable, if m.repeatable { 0 } else { m.version });
        migrations.sort_by(|a, b| {
            key(a)
                .cmp(&key(b))
                .then_with(|| a.description.cmp(&b.description))
        });
        let current = migrations
            .iter()
            .filter(|m| !m.repeatable)
            .filter(|m| matches!(m.state, MigrationState::Applied | MigrationState::Modified))
            .map(|m| m.version)
            .max();
        let pending = migrations
            .iter()
            .filter(|m| matches!(m.state, MigrationState::Pending | MigrationState::Outdated))
            .count();
        Ok(Status {
            schema: Status::SCHEMA,
            dialect: table.dialect(),
            head: set.head().map(|head| head.version),
            current,
            pending,
            migrations,
        })
    }

    /// A read-only full check: every recorded checksum and chain value, and
    /// the policies. Returns every problem found (empty when all is well).
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// let problems = MIGRATOR.verify(&pool).await?;
    /// for problem in &problems {
    ///     eprintln!("problem: {problem}");
    /// }
    /// assert!(problems.is_empty(), "the history does not match the binary");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Database errors; the problems themselves are the `Ok` value.
    pub async fn verify<'a>(&self, db: impl Database<'a>) -> Result<Vec<Error>, Error> {
        let (_, _, set, rows) = self.reading(db).await?;
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
}

/// The state of `m` recorded as `row`; `changed` when its checksum differs.
fn state_of(
    m: &crate::Migration,
    row: Option<&HistoryRow>,
    changed: MigrationState,
) -> MigrationState {
    match row {
        None => MigrationState::Pending,
        Some(row) if row.state == RowState::Failed => MigrationState::Failed,
        Some(row) if row.checksum != m.checksum() => changed,
        Some(_) => MigrationState::Applied,
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
        applied_at: row.map(|r| rfc3339(&r.applied_at)),
        duration_ms: row.map(|r| r.duration_ms),
        applied_by: row.map(|r| r.applied_by.clone()),
        repeatable: false,
        checksum: None,
        applied_checksum: row.map(|r| crate::dialect::hex(&r.checksum)),
        failed_statement: row.and_then(|r| r.failed_statement),
        error: row.and_then(|r| r.error.clone()),
        stamped: row.is_some_and(|r| r.applied_by.starts_with(STAMPED_BY)),
        undoable: false,
        compatible: false,
    }
}

/// A UTC time as the databases print it (`2026-01-01 12:00:00.123`) in RFC
/// 3339 (`2026-01-01T12:00:00.123Z`); any other text as it is.
fn rfc3339(time: &str) -> String {
    let bytes = time.as_bytes();
    let shaped = bytes.len() >= 19
        && bytes[4] == b'-'
        && bytes[10] == b' '
        && bytes[13] == b':'
        && !time.ends_with('Z')
        && !time[19..].contains(['+', '-']);
    match shaped {
        true => format!("{}T{}Z", &time[..10], &time[11..]),
        false => time.to_owned(),
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

/// How a stamped row's `applied_by` starts.
pub(crate) const STAMPED_BY: &str = "stamp by ";

/// `imported from <tool>` for a row taken over from another tool's history.
fn imported_from(applied_by: &str) -> Option<&str> {
    applied_by
        .strip_prefix("imported from ")
        .and_then(|rest| rest.split(' ').next())
        .map(|tool| &applied_by[..14 + tool.len()])
}
