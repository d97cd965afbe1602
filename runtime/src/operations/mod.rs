//! The operations beside `run`: [`undo`](Migrator::undo),
//! [`stamp`](Migrator::stamp), [`status`](Migrator::status),
//! [`verify`](Migrator::verify), [`plan`](Migrator::plan),
//! [`repair`](Migrator::repair) and [`adopt`](Migrator::adopt), one file
//! each, written once over the dialects.

use crate::engine::connection::{Conn, Database};
use crate::engine::history::{HistoryRow, Table};
use crate::{Error, MigrationSet, Migrator};
use std::fmt;

mod adopt;
mod plan;
mod repair;
mod stamp;
mod status;
mod undo;

pub(crate) use adopt::take_over_found;
pub use adopt::Tool;
pub use plan::{Plan, PlanStep};
pub use repair::RepairAction;
pub use status::{MigrationState, Status, StatusEntry};

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

/// Everything an operation needs: the connection, its history table and set.
struct Session<'a, 'm> {
    conn: Conn<'a>,
    table: Table,
    set: &'m MigrationSet,
}

/// A read-only operation's [`Session`]'s connection, table and set, with
/// the history's rows.
type Reading<'a, 'm> = (Conn<'a>, Table, &'m MigrationSet, Vec<HistoryRow>);

impl Migrator {
    async fn session<'a>(&self, db: impl Database<'a>) -> Result<Session<'a, '_>, Error> {
        let conn = db
            .connect()
            .await
            .map_err(Error::db("cannot connect to the database"))?;
        let dialect = conn.dialect()?;
        let set = self
            .set(dialect)
            .ok_or(Error::NoMigrationsForDialect { dialect })?;
        let table = self.table(dialect)?;
        Ok(Session { conn, table, set })
    }

    /// The session of a read-only operation, with the history's rows (none
    /// when the table does not exist yet).
    async fn reading<'a>(&self, db: impl Database<'a>) -> Result<Reading<'a, '_>, Error> {
        let Session {
            mut conn,
            table,
            set,
        } = self.session(db).await?;
        let rows = table.rows_if_exists(&mut conn).await?;
        Ok((conn, table, set, rows))
    }
}


async fn delete_row(conn: &mut Conn<'_>, table: &Table, version: i64) -> Result<(), Error> {
    conn.execute(table.delete_sql(version))
        .await
        .map_err(Error::db(format!(
            "cannot delete the history row of migration {version}"
        )))?;
    Ok(())
}
