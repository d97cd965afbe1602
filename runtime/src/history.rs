//! The history table: its SQL in each dialect, and its rows.

use crate::conn::{Cell, Conn, Ty, Value};
use crate::{Dialect, Error, config::Config, config::is_identifier};
use std::collections::BTreeMap;

/// The state of a recorded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RowState {
    /// Applied completely.
    Applied,
    /// Started statement by statement and not finished: it failed, or the
    /// process died.
    Failed,
}

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The migration's version.
    pub version: i64,
    /// Its description when it was applied.
    pub description: String,
    /// The checksum of the SQL that was applied.
    pub checksum: Vec<u8>,
    /// The chain value recorded with it.
    pub chain: Vec<u8>,
    /// Applied, or failed part-way.
    pub state: RowState,
    /// For a failed row: how many statements had completed.
    pub failed_statement: Option<i64>,
    /// For a failed row: the database error it hit, when recorded.
    pub error: Option<String>,
    /// When it was applied (or started), as the database prints it.
    pub applied_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// Which host and program applied it.
    pub applied_by: String,
}

/// The history table of one connection: its quoted name in that dialect.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) dialect: Dialect,
    pub(crate) name: String,
    schema: Option<String>,
    /// `schema.table` as given, for lock keys and messages.
    pub(crate) key: String,
}

impl Table {
    pub(crate) fn new(config: &Config, dialect: Dialect) -> Result<Table, Error> {
        for (what, name) in [("table", Some(config.table)), ("schema", config.schema)] {
            if let Some(name) = name
                && !is_identifier(name)
            {
                return Err(Error::InvalidConfig(format!(
                    "the history {what} name `{name}` is not a plain identifier; use ASCII letters, \
                     digits and `_`, starting with a letter or `_`, at most 63 characters"
                )));
            }
        }
        let quote = |name: &str| match dialect {
            Dialect::MySql => format!("`{name}`"),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{name}\""),
        };
        let name = match config.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(config.table)),
            None => quote(config.table),
        };
        Ok(Table {
            dialect,
            name,
            schema: config.schema.map(quote),
            key: format!("{}.{}", config.schema.unwrap_or(""), config.table),
        })
    }

    /// `CREATE TABLE IF NOT EXISTS`, and its schema where one is set.
    pub(crate) fn create_sql(&self) -> String {
        let t = &self.name;
        let table = match self.dialect {
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n\
                 version BIGINT PRIMARY KEY,\n\
                 description TEXT NOT NULL,\n\
                 checksum BYTEA NOT NULL,\n\
                 chain BYTEA NOT NULL,\n\
                 state TEXT NOT NULL,\n\
                 failed_statement BIGINT,\n\
                 error TEXT,\n\
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n\
                 duration_ms BIGINT NOT NULL DEFAULT 0,\n\
                 applied_by TEXT NOT NULL)"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n\
                 version BIGINT PRIMARY KEY,\n\
                 description TEXT NOT NULL,\n\
                 checksum VARBINARY(32) NOT NULL,\n\
                 chain VARBINARY(32) NOT NULL,\n\
                 state VARCHAR(16) NOT NULL,\n\
                 failed_statement BIGINT,\n\
                 error TEXT,\n\
                 applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n\
                 duration_ms BIGINT NOT NULL DEFAULT 0,\n\
                 applied_by TEXT NOT NULL) ENGINE=InnoDB"
            ),
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n\
                 version INTEGER PRIMARY KEY,\n\
                 description TEXT NOT NULL,\n\
                 checksum BLOB NOT NULL,\n\
                 chain BLOB NOT NULL,\n\
                 state TEXT NOT NULL,\n\
                 failed_statement INTEGER,\n\
                 error TEXT,\n\
                 applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),\n\
                 duration_ms INTEGER NOT NULL DEFAULT 0,\n\
                 applied_by TEXT NOT NULL)"
            ),
        };
        match (&self.schema, self.dialect) {
            (Some(schema), Dialect::Postgres) => {
                format!("CREATE SCHEMA IF NOT EXISTS {schema};\n{table}")
            }
            (Some(schema), Dialect::MySql) => {
                format!("CREATE DATABASE IF NOT EXISTS {schema};\n{table}")
            }
            _ => table,
        }
    }

    /// Create the history table (and its schema) if it does not exist.
    pub(crate) async fn ensure(&self, conn: &mut Conn<'_>) -> Result<(), Error> {
        conn.script(self.create_sql())
            .await
            .map_err(Error::db(format!(
                "cannot create the history table {}",
                self.name
            )))
    }

    /// The fast path's one query: the newest row.
    pub(crate) fn head_sql(&self) -> String {
        format!(
            "SELECT version, chain, state FROM {} ORDER BY version DESC LIMIT 1",
            self.name
        )
    }

    pub(crate) const HEAD_TYPES: [Ty; 3] = [Ty::I64, Ty::Bytes, Ty::Text];

    fn rows_sql(&self) -> String {
        let applied_at = match self.dialect {
            Dialect::Postgres => {
                "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
            }
            Dialect::MySql => "CAST(applied_at AS CHAR)",
            Dialect::Sqlite => "applied_at",
        };
        format!(
            "SELECT version, description, checksum, chain, state, failed_statement, error, {applied_at}, \
             duration_ms, applied_by FROM {} ORDER BY version",
            self.name
        )
    }

    /// Every row, oldest first.
    pub(crate) async fn rows(&self, conn: &mut Conn<'_>) -> Result<Vec<HistoryRow>, Error> {
        const TYPES: [Ty; 10] = [
            Ty::I64,
            Ty::Text,
            Ty::Bytes,
            Ty::Bytes,
            Ty::Text,
            Ty::OptI64,
            Ty::OptText,
            Ty::Text,
            Ty::I64,
            Ty::Text,
        ];
        let rows = conn
            .fetch(self.rows_sql(), Vec::new(), &TYPES)
            .await
            .map_err(Error::db(format!(
                "cannot read the history table {}",
                self.name
            )))?;
        Ok(rows.iter().map(|row| row_from_cells(row)).collect())
    }

    /// A placeholder for parameter `n` (from 1).
    pub(crate) fn param(&self, n: usize) -> String {
        match self.dialect {
            Dialect::Postgres => format!("${n}"),
            Dialect::MySql | Dialect::Sqlite => "?".to_owned(),
        }
    }

    /// A text value as a SQL literal, safe whatever it holds.
    pub(crate) fn text_literal(&self, text: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!(
                "convert_from({}, 'UTF8')",
                self.bytes_literal(text.as_bytes())
            ),
            Dialect::MySql => format!(
                "CONVERT({} USING utf8mb4)",
                self.bytes_literal(text.as_bytes())
            ),
            Dialect::Sqlite => format!("CAST({} AS TEXT)", self.bytes_literal(text.as_bytes())),
        }
    }

    /// Bytes as a SQL literal.
    pub(crate) fn bytes_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self.dialect {
            Dialect::Postgres => format!("'\\x{hex}'::bytea"),
            Dialect::MySql | Dialect::Sqlite => format!("X'{hex}'"),
        }
    }

    /// Parameters of an insert, in column order.
    pub(crate) fn insert_sql(&self, state: &str, duration_sql: &str) -> String {
        let p = |n| self.param(n);
        format!(
            "INSERT INTO {} (version, description, checksum, chain, state, failed_statement, duration_ms, applied_by) \
             VALUES ({}, {}, {}, {}, '{state}', {}, {duration_sql}, {})",
            self.name,
            p(1),
            p(2),
            p(3),
            p(4),
            if state == "failed" { "0" } else { "NULL" },
            p(5)
        )
    }
}

/// The rows, by version.
pub(crate) fn by_version(rows: &[HistoryRow]) -> BTreeMap<i64, &HistoryRow> {
    rows.iter().map(|row| (row.version, row)).collect()
}

/// The cells of a history row, in the order of `rows_sql`.
fn row_from_cells(row: &[Cell]) -> HistoryRow {
    let text = |i: usize| {
        row.get(i)
            .and_then(Cell::text)
            .unwrap_or_default()
            .to_owned()
    };
    HistoryRow {
        version: row.first().and_then(Cell::i64).unwrap_or_default(),
        description: text(1),
        checksum: row.get(2).map(Cell::bytes).unwrap_or_default().to_vec(),
        chain: row.get(3).map(Cell::bytes).unwrap_or_default().to_vec(),
        state: if row.get(4).and_then(Cell::text) == Some("applied") {
            RowState::Applied
        } else {
            RowState::Failed
        },
        failed_statement: row.get(5).and_then(Cell::i64),
        error: row.get(6).and_then(Cell::text).map(str::to_owned),
        applied_at: text(7),
        duration_ms: row.get(8).and_then(Cell::i64).unwrap_or_default(),
        applied_by: text(9),
    }
}

/// Whether an error says the history table does not exist yet.
pub(crate) fn is_undefined_table(error: &sqlx::Error) -> bool {
    let Some(db) = error.as_database_error() else {
        return false;
    };
    let code = db.code();
    matches!(code.as_deref(), Some("42P01" | "42S02" | "1146"))
        || db.message().starts_with("no such table")
        || (db.message().contains("Table") && db.message().contains("doesn't exist"))
}

/// The parameters of an insert: version, description, checksum, chain, applied_by.
pub(crate) fn insert_values(m: &crate::Migration, applied_by: &str) -> Vec<Value> {
    vec![
        Value::I64(m.version()),
        Value::Text(m.description().to_owned()),
        Value::Bytes(m.checksum().to_vec()),
        Value::Bytes(m.chain().to_vec()),
        Value::Text(applied_by.to_owned()),
    ]
}

/// Who is applying: host name and program, for `status`.
pub(crate) fn applied_by() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown-program".to_owned());
    format!("{host} {program} (pid {})", std::process::id())
}
