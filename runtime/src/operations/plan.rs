//! [`Migrator::plan`]: the SQL an operation would run, for review.

use super::undo::undo_range;
use super::Target;
use crate::engine::connection::Database;
use crate::engine::run::{check_policies, due_repeatables};
use crate::{Error, Migration, Migrator};
use std::fmt;

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
    /// The version (for a repeatable migration, its negative key).
    pub version: i64,
    /// The description.
    pub description: String,
    /// The SQL that would run, its placeholders replaced.
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
                if step.version < 0 {
                    "R".to_owned()
                } else {
                    step.version.to_string()
                },
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

impl Migrator {
    /// The SQL that [`run`](Self::run) (for `Target::Head`, or a version above
    /// the current one) or [`undo`](Self::undo) (for `Steps`, `Base`, or a
    /// version below the current one) would execute, in order. Executes
    /// nothing and takes no lock.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// use stowage::Target;
    ///
    /// // The SQL `run` would apply, without running it.
    /// let plan = MIGRATOR.plan(&pool, Target::Head).await?;
    /// println!("{plan}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As the operation it plans would refuse, and database errors.
    pub async fn plan<'a>(&self, db: impl Database<'a>, target: Target) -> Result<Plan, Error> {
        let (mut conn, table, set, rows) = self.reading(db).await?;
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
            let mut due: Vec<&Migration> = set
                .iter()
                .filter(|m| m.version() <= up_to && !rows.iter().any(|r| r.version == m.version()))
                .collect();
            // Repeatable migrations, new or changed, after a run to the head.
            if set.head().is_none_or(|head| up_to >= head.version) && !set.repeatables().is_empty() {
                due.extend(due_repeatables(&mut conn, &table, set).await?.0);
            }
            let steps = due
                .into_iter()
                .map(|m| step(self, m, m.up_sql()))
                .collect::<Result<_, _>>()?;
            return Ok(Plan { up: true, steps });
        }
        let range = undo_range(&mut conn, &table, set, &rows, target).await?;
        let steps = range
            .iter()
            .map(|m| step(self, m, m.down_sql().unwrap_or_default()))
            .collect::<Result<_, _>>()?;
        Ok(Plan { up: false, steps })
    }
}

/// The step of `m` running `sql`, its placeholders replaced.
fn step(migrator: &Migrator, m: &Migration, sql: &str) -> Result<PlanStep, Error> {
    Ok(PlanStep {
        version: m.version(),
        description: m.description().to_owned(),
        sql: migrator.placeholders().resolve(m.source_path(), sql)?,
        no_transaction: m.no_transaction(),
    })
}
