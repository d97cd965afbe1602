//! The history table: where it is, its rows, and every statement that
//! creates, reads or writes it (each dialect's own pieces, its column types
//! and literals, come from its [`SqlDialect`]). Nothing else writes a
//! history row.

use super::connection::{Cell, Conn, Ty};
use super::sql_dialect::{At, HistoryTypes, SqlDialect};
use crate::embedded::config::is_identifier;
use crate::{Config, Dialect, Error};
use std::collections::BTreeMap;

pub(crate) use super::entry::{Entry, Took, applied_by, sha256};

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
    /// Whether the row holds the migration's down SQL, for a binary that
    /// lacks the migration to undo it ([`Table::stored_down`]).
    pub down_stored: bool,
    /// Whether the migration was marked `-- stowage:compatible`.
    pub compatible: bool,
}

/// A migration's down SQL as its row keeps it: as embedded in the binary
/// that applied it (placeholders unresolved), with its file and checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredDown {
    /// The down SQL.
    pub(crate) sql: String,
    /// The file it came from, in the binary that applied it.
    pub(crate) path: String,
    /// SHA-256 of `sql`, recorded with it.
    pub(crate) checksum: Vec<u8>,
    /// Whether it runs outside a transaction.
    pub(crate) no_transaction: bool,
}

/// The columns that keep what a binary lacking the migration needs: its
/// down SQL, and whether it is `compatible`. Added to a history table made
/// before them ([`Table::upgrade`]), nullable so that a binary of an
/// earlier release goes on inserting rows without them.
const KEPT_COLUMNS: [&str; 5] = [
    "down_sql",
    "down_path",
    "down_checksum",
    "down_no_transaction",
    "compatible",
];

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
        let home = self.sql.home(At { conn, table: self }).await?;
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
            long_text,
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
             applied_by TEXT NOT NULL,\n\
             down_sql {long_text},\n\
             down_path TEXT,\n\
             down_checksum {bytes},\n\
             down_no_transaction {integer},\n\
             compatible {integer}){options}",
            self.name
        );
        match self.schema.as_deref().and_then(|s| self.sql.create_schema_sql(s)) {
            Some(schema) => format!("{schema};\n{create}"),
            None => create,
        }
    }

    /// Create the history table (and its schema) if it does not exist, or
    /// [upgrade](Self::upgrade) one made by an earlier release.
    pub(crate) async fn ensure(&self, conn: &mut Conn<'_>) -> Result<(), Error> {
        let sql = self.create_sql();
        conn.script(sql).await.map_err(Error::db(format!(
            "cannot create the history table {}",
            self.name
        )))?;
        self.upgrade(conn).await
    }

    /// Add the [`KEPT_COLUMNS`] to a table made before them, each one
    /// missing (a run stopped between two leaves some); under the lock.
    pub(crate) async fn upgrade(&self, conn: &mut Conn<'_>) -> Result<(), Error> {
        if self.has_columns(conn, &KEPT_COLUMNS).await? {
            return Ok(());
        }
        let HistoryTypes {
            integer,
            bytes,
            long_text,
            ..
        } = self.sql.history_types();
        for (column, ty) in KEPT_COLUMNS
            .into_iter()
            .zip([long_text, "TEXT", bytes, integer, integer]) {
            if self.has_columns(conn, &[column]).await? {
                continue;
            }
            let sql = format!("ALTER TABLE {} ADD COLUMN {column} {ty}", self.name);
            conn.execute(sql).await.map_err(Error::db(format!(
                "cannot add column {column} to the history table {}",
                self.name
            )))?;
        }
        tracing::info!(table = %self.name, "history table upgraded to keep down SQL and compatibility");
        Ok(())
    }

    /// Whether the table has every one of `columns`.
    async fn has_columns(&self, conn: &mut Conn<'_>, columns: &[&str]) -> Result<bool, Error> {
        let probe = format!("SELECT {} FROM {} WHERE 1 = 0", columns.join(", "), self.name);
        match conn.fetch(probe, &[]).await {
            Ok(_) => Ok(true),
            Err(error) if self.sql.is_undefined_column(&error) => Ok(false),
            Err(error) => Err(Error::db(format!(
                "cannot read the history table {}",
                self.name
            ))(error)),
        }
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

    /// Every row, oldest first. A table made before the [`KEPT_COLUMNS`],
    /// not upgraded yet, reads as holding no down SQL.
    pub(crate) async fn rows(&self, conn: &mut Conn<'_>) -> Result<Vec<HistoryRow>, Error> {
        let mut columns: Vec<String> = COLUMNS
            .iter()
            .map(|(name, _)| match *name {
                "applied_at" => self.sql.applied_at_as_text().to_owned(),
                name => name.to_owned(),
            })
            .collect();
        let mut types = COLUMNS.map(|(_, ty)| ty).to_vec();
        let select = |columns: &[String]| {
            format!(
                "SELECT {} FROM {} ORDER BY version",
                columns.join(", "),
                self.name
            )
        };
        let base = select(&columns);
        columns.push(
            self.sql
                .as_bigint("CASE WHEN down_sql IS NULL THEN 0 ELSE 1 END"),
        );
        columns.push(self.sql.as_bigint("COALESCE(compatible, 0)"));
        types.extend([Ty::I64, Ty::I64]);
        let rows = match conn.fetch(select(&columns), &types).await {
            Err(error) if self.sql.is_undefined_column(&error) => {
                conn.fetch(base, &types[..COLUMNS.len()]).await
            }
            rows => rows,
        }
        .map_err(Error::db(format!(
            "cannot read the history table {}",
            self.name
        )))?;
        Ok(rows.iter().map(|cells| Named(cells).row()).collect())
    }

    /// The down SQL that the row of `version` keeps, if any (none in a
    /// table made before it was kept).
    pub(crate) async fn stored_down(
        &self,
        conn: &mut Conn<'_>,
        version: i64,
    ) -> Result<Option<StoredDown>, Error> {
        let sql = format!(
            "SELECT down_sql, down_path, down_checksum, {} FROM {} \
             WHERE version = {version} AND down_sql IS NOT NULL",
            self.sql.as_bigint("down_no_transaction"),
            self.name
        );
        let types = [Ty::OptText, Ty::OptText, Ty::Bytes, Ty::OptI64];
        let rows = match conn.fetch(sql, &types).await {
            Err(error) if self.sql.is_undefined_column(&error) => return Ok(None),
            rows => rows.map_err(Error::db(format!(
                "cannot read the down SQL of migration {version} in the history table {}",
                self.name
            )))?,
        };
        Ok(rows.first().map(|cells| {
            let text = |i: usize| cells.get(i).and_then(Cell::text).unwrap_or_default();
            StoredDown {
                sql: text(0).to_owned(),
                path: text(1).to_owned(),
                checksum: cells.get(2).map(Cell::bytes).unwrap_or_default().to_vec(),
                no_transaction: cells.get(3).and_then(Cell::i64) == Some(1),
            }
        }))
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
    /// until [`applied_sql`](Self::applied_sql)). The [`KEPT_COLUMNS`] are
    /// named only for a migration with down SQL or marked compatible: a
    /// repeatable migration's row goes into a table of any release.
    pub(crate) fn insert_sql(&self, entry: &Entry<'_>, state: RowState, took: Took<'_>) -> String {
        let text = |text: Option<&str>| text.map_or("NULL".to_owned(), |t| self.sql.text_literal(t));
        let down = entry.down.as_ref();
        let (kept_columns, kept_values) = match down.is_some() || entry.compatible {
            true => (
                format!(", {}", KEPT_COLUMNS.join(", ")),
                format!(
                    ", {}, {}, {}, {}, {}",
                    text(down.map(|d| d.sql)),
                    text(down.map(|d| d.path)),
                    down.map_or("NULL".to_owned(), |d| self.sql.bytes_literal(&d.checksum)),
                    down.map_or("NULL", |d| if d.no_transaction { "1" } else { "0" }),
                    if entry.compatible { 1 } else { 0 },
                ),
            ),
            false => (String::new(), String::new()),
        };
        format!(
            "INSERT INTO {} (version, description, checksum, chain, state, failed_statement, \
             duration_ms, applied_by{kept_columns}) VALUES ({}, {}, {}, {}, {}, {}, {}, {}\
             {kept_values})",
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
            down_stored: self.0.get(COLUMNS.len()).and_then(Cell::i64) == Some(1),
            compatible: self.0.get(COLUMNS.len() + 1).and_then(Cell::i64) == Some(1),
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
