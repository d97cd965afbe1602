//! The history table: where it is, its rows, and every statement that
//! creates, reads or writes it (each dialect's own pieces, its column types
//! and literals, come from its [`SqlDialect`]). Nothing else writes a
//! history row.

use super::connection::{Cell, Conn, Ty};
use super::sql_dialect::{HistoryTypes, SqlDialect};
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
    /// The history table `config` names, written in `sql`'s dialect.
    pub(crate) fn new(config: &Config, sql: &'static dyn SqlDialect) -> Result<Table, Error> {
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

    /// The unquoted names of stowage's own tables: this one, its
    /// repeatable migrations' and its lease's.
    pub(crate) fn own_names(&self) -> [String; 3] {
        [
            self.base.to_owned(),
            format!("{}_repeatable", self.base),
            format!("{}_lock", self.base),
        ]
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

    /// `CREATE TABLE IF NOT EXISTS` of the history table (of this shape
    /// also the table of repeatable migrations), after its schema's.
    pub(crate) fn create_sql(&self) -> String {
        let HistoryTypes {
            integer,
            bytes,
            state,
            applied_at,
            options,
        } = self.sql.history_types();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {} (\n\
             version {integer} PRIMARY KEY,\n\
             description TEXT NOT NULL,\n\
             checksum {bytes} NOT NULL,\n\
             chain {bytes} NOT NULL,\n\
             state {state} NOT NULL,\n\
             failed_statement {integer},\n\
             error TEXT,\n\
             applied_at {applied_at},\n\
             duration_ms {integer} NOT NULL DEFAULT 0,\n\
             applied_by TEXT NOT NULL){options}",
            self.name
        );
        match self.schema.as_deref().and_then(|s| self.sql.create_schema_sql(s)) {
            Some(schema) => format!("{schema};\n{create}"),
            None => create,
        }
    }

    /// Create the history table (and its schema) if it does not exist.
    pub(crate) async fn ensure(&self, conn: &mut Conn<'_>) -> Result<(), Error> {
        let sql = self.create_sql();
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
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|(name, _)| match *name {
                "applied_at" => self.sql.applied_at_as_text().to_owned(),
                name => name.to_owned(),
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY version",
            columns.join(", "),
            self.name
        );
        let types = COLUMNS.map(|(_, ty)| ty);
        let rows = conn
            .fetch(sql, &types)
            .await
            .map_err(Error::db(format!(
                "cannot read the history table {}",
                self.name
            )))?;
        Ok(rows.iter().map(|cells| Named(cells).row()).collect())
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

    /// The row of a migration: applied whole ([`RowState::Applied`]), or
    /// started statement by statement ([`RowState::Failed`] with none done,
    /// until [`applied_sql`](Self::applied_sql)).
    pub(crate) fn insert_sql(&self, entry: &Entry<'_>, state: RowState, took: Took<'_>) -> String {
        format!(
            "INSERT INTO {} (version, description, checksum, chain, state, failed_statement, \
             duration_ms, applied_by) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
            self.name,
            entry.version,
            self.sql.text_literal(entry.description),
            self.sql.bytes_literal(entry.checksum),
            self.sql.bytes_literal(entry.chain),
            state.literal(),
            match state {
                RowState::Failed => "0",
                RowState::Applied => "NULL",
            },
            took.sql(),
            self.sql.text_literal(entry.applied_by),
        )
    }

    /// A started migration's count of statements done.
    pub(crate) fn progress_sql(&self, version: i64, done: usize) -> String {
        format!(
            "UPDATE {} SET failed_statement = {done} WHERE version = {version}",
            self.name
        )
    }

    /// A started migration finished: applied, and how long it took.
    pub(crate) fn applied_sql(&self, version: i64, took: Took<'_>) -> String {
        format!(
            "UPDATE {} SET state = {}, failed_statement = NULL, duration_ms = {} \
             WHERE version = {version}",
            self.name,
            RowState::Applied.literal(),
            took.sql()
        )
    }

    /// A row's chain value, recorded again by this binary.
    pub(crate) fn chain_sql(&self, version: i64, chain: &[u8]) -> String {
        format!(
            "UPDATE {} SET chain = {} WHERE version = {version}",
            self.name,
            self.sql.bytes_literal(chain)
        )
    }

    /// A row's checksum and chain, accepted from the binary.
    pub(crate) fn checksum_sql(&self, version: i64, checksum: &[u8], chain: &[u8]) -> String {
        format!(
            "UPDATE {} SET checksum = {}, chain = {} WHERE version = {version}",
            self.name,
            self.sql.bytes_literal(checksum),
            self.sql.bytes_literal(chain)
        )
    }

    /// A delete of a version's row.
    pub(crate) fn delete_sql(&self, version: i64) -> String {
        format!("DELETE FROM {} WHERE version = {version}", self.name)
    }

    /// Set the error of a version's row (after its statements failed).
    pub(crate) async fn record_error(&self, conn: &mut Conn<'_>, version: i64, error: &str) {
        let sql = format!(
            "UPDATE {} SET error = {} WHERE version = {version}",
            self.name,
            self.sql.text_literal(error)
        );
        // The error being recorded is the one reported; this is only a note.
        let _ = conn.execute(sql).await;
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

/// The history table's columns and how each is read, in [`Table::rows`]'s
/// order.
const COLUMNS: [(&str, Ty); 10] = [
    ("version", Ty::I64),
    ("description", Ty::Text),
    ("checksum", Ty::Bytes),
    ("chain", Ty::Bytes),
    ("state", Ty::Text),
    ("failed_statement", Ty::OptI64),
    ("error", Ty::OptText),
    ("applied_at", Ty::Text),
    ("duration_ms", Ty::I64),
    ("applied_by", Ty::Text),
];

/// The cells of one row of [`Table::rows`], read by column name.
struct Named<'r>(&'r [Cell]);

impl Named<'_> {
    fn cell(&self, name: &str) -> Option<&Cell> {
        let index = COLUMNS.iter().position(|(column, _)| *column == name)?;
        self.0.get(index)
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.cell(name).and_then(Cell::text)
    }

    fn i64(&self, name: &str) -> Option<i64> {
        self.cell(name).and_then(Cell::i64)
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        self.cell(name).map(Cell::bytes).unwrap_or_default().to_vec()
    }

    fn row(&self) -> HistoryRow {
        HistoryRow {
            version: self.i64("version").unwrap_or_default(),
            description: self.text("description").unwrap_or_default().to_owned(),
            checksum: self.bytes("checksum"),
            chain: self.bytes("chain"),
            state: match self.text("state") {
                Some("applied") => RowState::Applied,
                _ => RowState::Failed,
            },
            failed_statement: self.i64("failed_statement"),
            error: self.text("error").map(str::to_owned),
            applied_at: self.text("applied_at").unwrap_or_default().to_owned(),
            duration_ms: self.i64("duration_ms").unwrap_or_default(),
            applied_by: self.text("applied_by").unwrap_or_default().to_owned(),
        }
    }
}

/// What a history row records of its migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub(crate) version: i64,
    pub(crate) description: &'a str,
    pub(crate) checksum: &'a [u8],
    pub(crate) chain: &'a [u8],
    /// Who applied it ([`applied_by`]), or where it was taken over from.
    pub(crate) applied_by: &'a str,
}

impl<'a> Entry<'a> {
    /// The entry of `m`, applied by `applied_by`.
    pub(crate) fn of(m: &'a crate::Migration, applied_by: &'a str) -> Entry<'a> {
        Entry {
            version: m.version(),
            description: m.description(),
            checksum: m.checksum(),
            chain: m.chain(),
            applied_by,
        }
    }
}

/// How long a migration took, as its row records it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Took<'a> {
    /// Measured here, in milliseconds.
    Ms(i64),
    /// Measured by the server: an SQL expression of whole milliseconds.
    Sql(&'a str),
}

impl Took<'_> {
    /// Measured here: `elapsed` in whole milliseconds.
    pub(crate) fn since(started: std::time::Instant) -> Took<'static> {
        Took::Ms(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX))
    }

    fn sql(self) -> String {
        match self {
            Took::Ms(ms) => ms.to_string(),
            Took::Sql(expr) => expr.to_owned(),
        }
    }
}

impl RowState {
    /// The state as the `state` column holds it, quoted.
    fn literal(self) -> &'static str {
        match self {
            RowState::Applied => "'applied'",
            RowState::Failed => "'failed'",
        }
    }
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
