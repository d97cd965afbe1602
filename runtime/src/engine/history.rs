//! The history table: where it is, its rows, and the SQL that reads and
//! writes them (each dialect's own pieces come from its [`SqlDialect`]).

use super::connection::{Cell, Conn, Ty, Value};
use crate::dialect::SqlDialect;
use crate::embedded::config::is_identifier;
use crate::{Config, Dialect, Error};
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

/// The history table of one connection: its dialect and its quoted name.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// What the dialect does its own way.
    pub(crate) sql: &'static dyn SqlDialect,
    pub(crate) name: String,
    schema: Option<String>,
    /// The table's own name, quoted.
    unqualified: String,
    /// The schema (PostgreSQL) or database (MySQL) the table was found in
    /// before any migration ran, quoted; see [`Table::pinned`].
    pub(crate) home: Option<String>,
    /// `schema.table` as given, for lock keys and messages.
    pub(crate) key: String,
    /// The table's own name, unquoted.
    base: &'static str,
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
        let sql = crate::dialect::of(dialect)?;
        let name = match config.schema {
            Some(schema) => format!("{}.{}", sql.quote(schema), sql.quote(config.table)),
            None => sql.quote(config.table),
        };
        Ok(Table {
            sql,
            name,
            schema: config.schema.map(|schema| sql.quote(schema)),
            unqualified: sql.quote(config.table),
            home: None,
            key: format!("{}.{}", config.schema.unwrap_or(""), config.table),
            base: config.table,
        })
    }

    /// The table of repeatable migrations beside this one,
    /// `<table>_repeatable`, in the same schema: its rows are those of this
    /// table's shape, keyed by each repeatable migration's negative key.
    pub(crate) fn repeatables(&self) -> Result<Table, Error> {
        self.sibling("repeatable", "the table of repeatable migrations")
    }

    /// A table beside this one, `<table>_<suffix>`, in the same schema.
    pub(crate) fn sibling(&self, suffix: &str, what: &str) -> Result<Table, Error> {
        let own = format!("{}_{suffix}", self.base);
        if !is_identifier(&own) {
            return Err(Error::InvalidConfig(format!(
                "{what}, `{own}`, would be longer than 63 characters; give the history table a \
                 shorter name"
            )));
        }
        let unqualified = self.sql.quote(&own);
        let name = match (&self.schema, &self.home) {
            (Some(schema), _) => format!("{schema}.{unqualified}"),
            (None, Some(home)) => format!("{home}.{unqualified}"),
            (None, None) => unqualified.clone(),
        };
        Ok(Table {
            name,
            unqualified,
            ..self.clone()
        })
    }

    /// The table named by the schema or database it is in now, so that a
    /// migration changing the session's `search_path` or current database
    /// cannot move stowage's own statements to another table.
    pub(crate) async fn pinned(&self, conn: &mut Conn<'_>) -> Result<Table, Error> {
        let home = self.sql.home(conn, self).await?;
        let name = match (&self.schema, &home) {
            (None, Some(home)) => format!("{home}.{}", self.unqualified),
            _ => self.name.clone(),
        };
        Ok(Table {
            name,
            home,
            ..self.clone()
        })
    }

    /// The dialect of the connection this table is on.
    pub(crate) fn dialect(&self) -> Dialect {
        self.sql.dialect()
    }

    /// Create the history table (and its schema) if it does not exist.
    pub(crate) async fn ensure(&self, conn: &mut Conn<'_>) -> Result<(), Error> {
        let sql = self
            .sql
            .create_history_sql(&self.name, self.schema.as_deref());
        conn.script(sql).await.map_err(Error::db(format!(
            "cannot create the history table {}",
            self.name
        )))
    }

    /// The fast path's one query: the newest row, and with `repeatables`
    /// the rows of that table (negative versions, their checksums).
    pub(crate) fn head_sql(&self, repeatables: Option<&Table>) -> String {
        let head = format!(
            "SELECT version, chain, state FROM {} ORDER BY version DESC LIMIT 1",
            self.name
        );
        match repeatables {
            None => head,
            Some(other) => format!(
                "SELECT version, chain, state FROM ({head}) head \
                 UNION ALL SELECT version, checksum, state FROM {}",
                other.name
            ),
        }
    }

    pub(crate) const HEAD_TYPES: [Ty; 3] = [Ty::I64, Ty::Bytes, Ty::Text];

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
        let sql = format!(
            "SELECT version, description, checksum, chain, state, failed_statement, error, {}, \
             duration_ms, applied_by FROM {} ORDER BY version",
            self.sql.applied_at_as_text(),
            self.name
        );
        let rows = conn
            .fetch(sql, Vec::new(), &TYPES)
            .await
            .map_err(Error::db(format!(
                "cannot read the history table {}",
                self.name
            )))?;
        Ok(rows.iter().map(|row| row_from_cells(row)).collect())
    }

    /// Every row, oldest first, or none when the table does not exist yet.
    pub(crate) async fn rows_if_exists(
        &self,
        conn: &mut Conn<'_>,
    ) -> Result<Vec<HistoryRow>, Error> {
        Ok(self.read(conn).await?.unwrap_or_default())
    }

    /// Every row, oldest first, or `None` when the table does not exist.
    pub(crate) async fn read(
        &self,
        conn: &mut Conn<'_>,
    ) -> Result<Option<Vec<HistoryRow>>, Error> {
        match self.rows(conn).await {
            Err(Error::Database { source, .. }) if self.is_undefined(&source) => Ok(None),
            rows => rows.map(Some),
        }
    }

    /// A placeholder for parameter `n` (from 1).
    pub(crate) fn param(&self, n: usize) -> String {
        self.sql.param(n)
    }

    /// An insert of a migration's row, taking [`insert_values`] as parameters.
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

    /// A delete of a version's row, for an undo.
    pub(crate) fn delete_sql(&self, version: i64) -> String {
        format!("DELETE FROM {} WHERE version = {version}", self.name)
    }

    /// Set the error of a version's row (after its statements failed).
    pub(crate) async fn record_error(&self, conn: &mut Conn<'_>, version: i64, error: &str) {
        let sql = format!(
            "UPDATE {} SET error = {} WHERE version = {}",
            self.name,
            self.param(1),
            self.param(2)
        );
        let values = vec![Value::Text(error.to_owned()), Value::I64(version)];
        // The error being recorded is the one reported; this is only a note.
        let _ = conn.execute(sql, values).await;
    }

    /// Whether an error says the history table does not exist yet.
    pub(crate) fn is_undefined(&self, error: &sqlx::Error) -> bool {
        self.sql.is_undefined_table(error)
    }
}

/// The rows, by version.
pub(crate) fn by_version(rows: &[HistoryRow]) -> BTreeMap<i64, &HistoryRow> {
    rows.iter().map(|row| (row.version, row)).collect()
}

/// The cells of a history row, in the order [`Table::rows`] selects them.
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
