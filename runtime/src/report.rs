//! [`Report`]: what a run did.

use crate::Dialect;
use std::fmt;
use std::time::Duration;

/// What `Migrator::run` did.
///
/// `Display` says it in a line and one line per migration, as `migrate up`
/// prints it.
///
/// ```no_run
/// # async fn start(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
///
/// let report = MIGRATOR.run(&pool).await?;
/// for m in report.applied() {
///     println!("{} {} took {:?}", m.version, m.description, m.duration);
/// }
/// println!("now at {:?}, {:?} in all", report.head(), report.total_duration());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    dialect: Dialect,
    applied: Vec<Applied>,
    reverted: Vec<Applied>,
    unrecorded: Vec<Applied>,
    beside: Vec<Applied>,
    head: Option<i64>,
}

/// One migration applied (or, by `undo`, reverted).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long it took, history row included.
    pub duration: Duration,
    /// Whether it is a repeatable migration (`R__<name>.sql`), whose
    /// `version` is then its negative key.
    pub repeatable: bool,
}

impl Applied {
    pub(crate) fn of(migration: &crate::Migration, duration: Duration) -> Applied {
        Applied {
            version: migration.version(),
            description: migration.description().to_owned(),
            duration,
            repeatable: migration.is_repeatable(),
        }
    }
}

impl Report {
    pub(crate) fn new(dialect: Dialect, applied: Vec<Applied>, head: Option<i64>) -> Report {
        Report {
            dialect,
            applied,
            reverted: Vec::new(),
            unrecorded: Vec::new(),
            beside: Vec::new(),
            head,
        }
    }

    pub(crate) fn with_beside(mut self, beside: Vec<Applied>) -> Report {
        self.beside = beside;
        self
    }

    pub(crate) fn with_unrecorded(mut self, unrecorded: Vec<Applied>) -> Report {
        self.unrecorded = unrecorded;
        self
    }

    pub(crate) fn undone(dialect: Dialect, reverted: Vec<Applied>, head: Option<i64>) -> Report {
        Report {
            dialect,
            applied: Vec::new(),
            reverted,
            unrecorded: Vec::new(),
            beside: Vec::new(),
            head,
        }
    }

    /// The history rows `stamp` removed, above
    /// its target, oldest first: their SQL was not reverted.
    pub fn unrecorded(&self) -> &[Applied] {
        &self.unrecorded
    }

    /// The migrations applied in the database, marked
    /// `-- stowage:compatible`, that this binary lacks (a newer binary's):
    /// the run went on beside them. Oldest first; their `duration` is zero.
    pub fn beside(&self) -> &[Applied] {
        &self.beside
    }

    /// The migrations reverted by `undo`, newest first.
    pub fn reverted(&self) -> &[Applied] {
        &self.reverted
    }

    /// The migrations applied by this run, oldest first, then the
    /// repeatable migrations it applied; empty when the database was up to
    /// date.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    /// The newest applied version after the run, or `None` for an empty history.
    pub fn head(&self) -> Option<i64> {
        self.head
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The time spent applying (or reverting) migrations.
    pub fn total_duration(&self) -> Duration {
        self.applied
            .iter()
            .chain(&self.reverted)
            .map(|a| a.duration)
            .sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self
            .head
            .map_or_else(|| "no migrations".to_owned(), |v| format!("version {v}"));
        let (verb, list) = if self.reverted.is_empty() {
            ("applied", &self.applied)
        } else {
            ("reverted", &self.reverted)
        };
        match list.len() {
            0 => write!(f, "{} database up to date at {head}", self.dialect)?,
            n => {
                write!(
                    f,
                    "{verb} {n} migration{} on the {} database in {:.1?}, now at {head}",
                    if n == 1 { "" } else { "s" },
                    self.dialect,
                    self.total_duration()
                )?;
                for applied in list {
                    let version = match applied.repeatable {
                        true => "R".to_owned(),
                        false => applied.version.to_string(),
                    };
                    write!(
                        f,
                        "\n  {version} {} ({:.1?})",
                        applied.description, applied.duration
                    )?;
                }
            }
        }
        if !self.beside.is_empty() {
            let n = self.beside.len();
            write!(
                f,
                "\nbeside {n} newer compatible migration{} this binary does not have:",
                if n == 1 { "" } else { "s" }
            )?;
            for m in &self.beside {
                write!(f, "\n  {} {}", m.version, m.description)?;
            }
        }
        Ok(())
    }
}
