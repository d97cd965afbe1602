//! The engine: one connection of any backend, the history table, the lock,
//! statements, and [`Migrator::run`](crate::Migrator::run) written once over
//! [`sql_dialect::SqlDialect`], which each module of `crate::dialect`
//! implements. Nothing here names a dialect's implementation: the one a
//! migrator uses comes in with its history table.

pub(crate) mod callbacks;
pub(crate) mod connection;
pub(crate) mod entry;
pub(crate) mod history;
pub(crate) mod lease;
pub(crate) mod lock;
pub(crate) mod run;
pub(crate) mod sql_dialect;
pub(crate) mod statements;
pub(crate) mod stepwise;
