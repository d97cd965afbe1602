//! What differs between the databases, one module per dialect behind one
//! trait, [`SqlDialect`] (defined in `engine/sql_dialect.rs`): quoting and
//! literals, the history table's SQL, the lock, how a migration is applied
//! (and its failure reported), and how one is reverted. The engine and the
//! operations are written once over it.
//!
//! (How a test database is copied differs too; that lives beside the test
//! harness, in `testing/`.)

pub(crate) use crate::engine::sql_dialect::{
    At, Done, ErrorSign, HistoryTypes, SqlDialect, Under, Vocabulary, hex,
};
use crate::{Dialect, Error};

mod mysql;
mod postgres;
mod sqlite;

/// The implementation of `dialect`.
///
/// # Errors
///
/// [`Error::UnsupportedBackend`] for a dialect this version does not know.
pub(crate) fn of(dialect: Dialect) -> Result<&'static dyn SqlDialect, Error> {
    match dialect {
        Dialect::Postgres => Ok(&postgres::Postgres),
        Dialect::MySql => Ok(&mysql::MySql),
        Dialect::Sqlite => Ok(&sqlite::Sqlite),
        other => Err(Error::UnsupportedBackend(other.to_string())),
    }
}
