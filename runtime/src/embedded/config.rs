//! How a [`Migrator`](crate::Migrator) applies migrations: history table,
//! lock timeout and policies.

use std::time::Duration;

/// What to do when the database and the binary disagree in a way that can
/// be safe on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Stop with an error and change nothing (the default).
    #[default]
    Error,
    /// Go on, with a `tracing` warning.
    Allow,
}

/// How the migration lock is taken; see
/// [`Migrator::with_lock`](crate::Migrator::with_lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Lock {
    /// The server's own lock, freed by the server when the holder's
    /// connection ends (the default). On PostgreSQL, an advisory lock held
    /// by a transaction on a connection of its own, which holds behind a
    /// pooler in transaction mode (PgBouncer) too; a session advisory lock
    /// on a lent connection. MySQL's `GET_LOCK`, with a lease row besides on
    /// a Galera cluster. SQLite's write lock.
    #[default]
    Server,
    /// A lease row in `<table>_lock`, renewed while migrating and taken over
    /// 30 s after its holder stopped renewing it: for servers whose locks
    /// are not known to hold (other PostgreSQL-wire engines), or a pooler
    /// that allows one server connection only. On MySQL, besides
    /// `GET_LOCK`; SQLite's write lock needs none.
    Lease,
}

/// The settings of a [`Migrator`](crate::Migrator); see its `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub(crate) table: &'static str,
    pub(crate) schema: Option<&'static str>,
    pub(crate) lock_timeout: Duration,
    pub(crate) on_modified: Policy,
    pub(crate) on_missing: Policy,
    pub(crate) on_out_of_order: Policy,
    pub(crate) on_existing_schema: Policy,
    pub(crate) take_over: bool,
    pub(crate) lock: Lock,
}

impl Config {
    pub(crate) const DEFAULT: Config = Config {
        table: "stowage_migrations",
        schema: None,
        lock_timeout: Duration::from_secs(60),
        on_modified: Policy::Error,
        on_missing: Policy::Error,
        on_out_of_order: Policy::Error,
        on_existing_schema: Policy::Error,
        take_over: true,
        lock: Lock::Server,
    };

    /// The history table's name.
    pub const fn table(&self) -> &'static str {
        self.table
    }

    /// The history table's schema (PostgreSQL schema, MySQL database, SQLite
    /// attached database), or `None` for the connection's default.
    pub const fn schema(&self) -> Option<&'static str> {
        self.schema
    }

    /// How long to wait for another process's migration lock.
    pub const fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// The policy for an applied migration whose checksum changed.
    pub const fn on_modified(&self) -> Policy {
        self.on_modified
    }

    /// The policy for an applied version the binary does not have.
    pub const fn on_missing(&self) -> Policy {
        self.on_missing
    }

    /// The policy for a pending migration older than the newest applied one.
    pub const fn on_out_of_order(&self) -> Policy {
        self.on_out_of_order
    }

    /// The policy for a database that holds tables or views of its own and
    /// no history, when there is something to apply.
    pub const fn on_existing_schema(&self) -> Policy {
        self.on_existing_schema
    }

    /// How the migration lock is taken.
    pub const fn lock(&self) -> Lock {
        self.lock
    }

    /// Whether `run` takes over the history of sqlx, diesel or refinery when
    /// it finds no history of its own (default `true`).
    pub const fn take_over(&self) -> bool {
        self.take_over
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

/// Whether `name` is a plain SQL identifier: ASCII letters, digits and `_`,
/// not starting with a digit, at most 63 bytes (PostgreSQL's limit).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::is_identifier;

    #[test]
    fn identifiers() {
        for good in ["stowage_migrations", "_x", "History2", &"a".repeat(63)] {
            assert!(is_identifier(good), "{good}");
        }
        for bad in [
            "",
            "2x",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
