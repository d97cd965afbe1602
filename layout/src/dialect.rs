//! [`Dialect`]: the SQL dialects stowage knows, and their folder names.

use std::fmt;

/// A SQL dialect, as served by one of sqlx's drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL (folder `postgres/` of a multi-dialect set).
    Postgres,
    /// MySQL and MariaDB (folder `mysql/`).
    MySql,
    /// SQLite (folder `sqlite/`).
    Sqlite,
}

impl Dialect {
    /// Every dialect, in the order the sets of a multi-dialect folder are kept.
    pub const ALL: [Dialect; 3] = [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite];

    /// The name of this dialect's folder in a multi-dialect set.
    pub const fn folder(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The dialect whose folder is named `name`: `postgres` (or
    /// `postgresql`), `mysql` (or `mariadb`), `sqlite`.
    pub fn from_folder(name: &str) -> Option<Dialect> {
        match name {
            "postgresql" => Some(Dialect::Postgres),
            "mariadb" => Some(Dialect::MySql),
            _ => Dialect::ALL.into_iter().find(|d| d.folder() == name),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.folder())
    }
}
