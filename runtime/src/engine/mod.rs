//! The engine: one connection of any backend, the history table, the lock,
//! statements, and [`Migrator::run`](crate::Migrator::run) written once over
//! the dialects of [`crate::dialect`].

pub(crate) mod callbacks;
pub(crate) mod connection;
pub(crate) mod history;
pub(crate) mod lease;
pub(crate) mod lock;
pub(crate) mod run;
pub(crate) mod statements;
pub(crate) mod stepwise;
