//! Taking over another tool's history: [`Migrator::adopt`], and `run` on a
//! database whose history sqlx, diesel or refinery kept.
//!
//! The other tool's rows are read and matched to the binary's migrations
//! (by the same naming rules the folder was read with), checked (checksums
//! where the tool kept a comparable one, the policies as if stowage had
//! written the rows) and only then written into stowage's own table, which
//! did not exist before. Anything that does not match is an
//! [`Error::TakeOver`] and changes nothing. The other tool's table is left as
//! it was.

use super::Session;
use crate::engine::connection::{Cell, Conn, Database, Ty};
use crate::engine::history::{Entry, HistoryRow, RowState, Table, Took};
use crate::engine::lock::{lock, unlock};
use crate::engine::run::check_policies;
use crate::error::short_hex;
use crate::report::Applied;
use crate::{Error, Migration, MigrationSet, Migrator, Report};
use sha2::{Digest, Sha384};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A migration tool whose history stowage can take over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tool {
    /// sqlx (`sqlx::migrate!`, `sqlx migrate run`): `_sqlx_migrations`.
    Sqlx,
    /// diesel (`diesel_migrations`, `diesel migration run`):
    /// `__diesel_schema_migrations`.
    Diesel,
    /// refinery: `refinery_schema_history`.
    Refinery,
}

impl Tool {
    /// Every tool, in the order `run` looks for their tables.
    pub const ALL: [Tool; 3] = [Tool::Sqlx, Tool::Diesel, Tool::Refinery];

    /// The tool's history table (its default name).
    pub const fn history_table(self) -> &'static str {
        match self {
            Tool::Sqlx => "_sqlx_migrations",
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Refinery => "refinery_schema_history",
        }
    }

    /// The tool's name: `sqlx`, `diesel` or `refinery`.
    pub const fn name(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::Diesel => "diesel",
            Tool::Refinery => "refinery",
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Tool {
    type Err = String;

    fn from_str(name: &str) -> Result<Tool, String> {
        Tool::ALL
            .into_iter()
            .find(|tool| tool.name() == name)
            .ok_or_else(|| format!("`{name}` is not a tool stowage takes over from: use sqlx, diesel or refinery"))
    }
}

impl Migrator {
    /// Take over the history `tool` kept in this database: record the
    /// migrations it applied in stowage's history table, as `run` does by
    /// itself when it finds one such table and no history of its own. Runs
    /// no migration; the next `run` applies what is pending.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// use stowage::Tool;
    ///
    /// // The database was migrated by `sqlx::migrate!` so far.
    /// let report = MIGRATOR.adopt(&pool, Tool::Sqlx).await?;
    /// println!("took over {} migrations", report.applied().len());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TakeOver`] when stowage's history table already holds rows,
    /// the tool's table does not exist, or its rows do not match the binary
    /// (a version the binary lacks, another checksum, a failed row, a gap);
    /// nothing is changed. Database errors.
    pub async fn adopt<'a>(&self, db: impl Database<'a>, tool: Tool) -> Result<Report, Error> {
        let Session { conn, table, set } = self.session(db).await?;
        let mut locked = lock(conn, &table, self).await?;
        let result = adopt_locked(self, &mut locked.conn, &table, set, tool).await;
        unlock(locked, &table, result).await
    }
}

async fn adopt_locked(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
    tool: Tool,
) -> Result<Report, Error> {
    if let Some(count) = own_rows(conn, table).await?
        && count > 0
    {
        return Err(problem(
            tool,
            format!(
                "stowage's history table {} already holds {count} migration{}: there is nothing \
                 to take over",
                table.name,
                if count == 1 { "" } else { "s" }
            ),
        ));
    }
    if !holds_table(conn, table, tool).await? {
        return Err(problem(
            tool,
            "the table does not exist in this database (is this the right database?)".to_owned(),
        ));
    }
    let taken = take_over(migrator, conn, table, set, tool).await?;
    let head = taken.iter().map(|t| t.migration.version()).max();
    let applied = taken
        .iter()
        .map(|t| Applied::of(t.migration, std::time::Duration::ZERO))
        .collect();
    Ok(Report::new(table.dialect(), applied, head))
}

/// For `run`, under the lock: when stowage has no history table and exactly
/// one other tool's table exists, take it over.
pub(crate) async fn take_over_found(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
) -> Result<(), Error> {
    if own_rows(conn, table).await?.is_some() {
        return Ok(());
    }
    let mut found = Vec::new();
    for tool in Tool::ALL {
        if holds_table(conn, table, tool).await? {
            found.push(tool);
        }
    }
    match found[..] {
        [] => Ok(()),
        [tool] => take_over(migrator, conn, table, set, tool).await.map(drop),
        [first, ref others @ ..] => Err(problem(
            first,
            format!(
                "the database also holds the history of {}; take over the one that is current \
                 with `Migrator::adopt` (`migrate adopt --from <tool>`)",
                others.iter().map(|t| t.name()).collect::<Vec<_>>().join(" and ")
            ),
        )),
    }
}

/// A migration the other tool recorded, matched to the binary's.
struct Taken<'m> {
    migration: &'m Migration,
    /// For `applied_by`: where the row comes from, and when the tool applied it.
    note: String,
    duration_ms: i64,
}

fn problem(tool: Tool, problem: String) -> Error {
    Error::TakeOver {
        tool: tool.name().to_owned(),
        table: tool.history_table().to_owned(),
        problem,
    }
}

/// The number of rows in stowage's history table, or `None` when it does not
/// exist.
async fn own_rows(conn: &mut Conn<'_>, table: &Table) -> Result<Option<i64>, Error> {
    let sql = format!("SELECT COUNT(*) FROM {}", table.name);
    match conn.fetch(sql, &[Ty::I64]).await {
        Ok(rows) => Ok(Some(first_i64(&rows))),
        Err(error) if table.is_undefined(&error) => Ok(None),
        Err(error) => Err(Error::db(format!(
            "cannot read the history table {}",
            table.name
        ))(error)),
    }
}

async fn holds_table(conn: &mut Conn<'_>, table: &Table, tool: Tool) -> Result<bool, Error> {
    let sql = format!(
        "SELECT COUNT(*) FROM {}",
        table.sql.quote(tool.history_table())
    );
    match conn.fetch(sql, &[Ty::I64]).await {
        Ok(_) => Ok(true),
        Err(error) if table.is_undefined(&error) => Ok(false),
        Err(error) => Err(Error::db(format!(
            "cannot read {}'s history table {}",
            tool,
            tool.history_table()
        ))(error)),
    }
}

fn first_i64(rows: &[Vec<Cell>]) -> i64 {
    rows.first()
        .and_then(|row| row.first())
        .and_then(Cell::i64)
        .unwrap_or(0)
}

/// Read, match and check the other tool's rows, then write them into
/// stowage's history table.
async fn take_over<'m>(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    set: &'m MigrationSet,
    tool: Tool,
) -> Result<Vec<Taken<'m>>, Error> {
    let taken = read(conn, table, set, tool)
        .await
        .map_err(|message| problem(tool, message))?;
    // The policies, as if stowage had written these rows: a migration the
    // other tool skipped, say, is out of order.
    let rows: Vec<HistoryRow> = taken
        .iter()
        .map(|t| HistoryRow {
            version: t.migration.version(),
            description: t.migration.description().to_owned(),
            checksum: t.migration.checksum().to_vec(),
            chain: t.migration.chain().to_vec(),
            state: RowState::Applied,
            failed_statement: None,
            error: None,
            applied_at: String::new(),
            duration_ms: t.duration_ms,
            applied_by: t.note.clone(),
            down_stored: false,
            compatible: false,
        })
        .collect();
    if let Some(error) = check_policies(migrator, set, &rows).into_iter().next() {
        return Err(problem(tool, format!("as stowage's history, {error}")));
    }
    write(conn, table, &taken).await?;
    tracing::info!(%tool, migrations = taken.len(), "took over the history of another tool");
    Ok(taken)
}

/// Create stowage's history table and record the migrations; on failure,
/// drop the table again, so that nothing is changed.
async fn write(conn: &mut Conn<'_>, table: &Table, taken: &[Taken<'_>]) -> Result<(), Error> {
    table.ensure(conn).await?;
    for t in taken {
        let result = conn
            .execute(
                table.insert_sql(
                    &Entry::of(t.migration, &t.note),
                    RowState::Applied,
                    Took::Ms(t.duration_ms),
                ),
            )
            .await;
        if let Err(error) = result {
            let _ = conn.script(format!("DROP TABLE {}", table.name)).await;
            return Err(Error::db(format!(
                "cannot record migration {} in the history table {}",
                t.migration.version(),
                table.name
            ))(error));
        }
    }
    Ok(())
}

/// The file's text as the tool may have read it: stowage embeds it
/// normalised (no BOM, LF line ends), the tool hashed the bytes on disk.
fn as_on_disk(text: &str) -> Vec<String> {
    let mut texts = vec![text.to_owned()];
    if text.contains('\n') {
        texts.push(text.replace('\n', "\r\n"));
    }
    let with_bom: Vec<String> = texts.iter().map(|t| format!("\u{feff}{t}")).collect();
    texts.extend(with_bom);
    texts
}

impl Tool {
    /// The query that reads the tool's rows, oldest first, and the types of
    /// its columns.
    fn rows_query(self, table: &Table) -> (String, &'static [Ty]) {
        let t = table.sql;
        let from = t.quote(self.history_table());
        match self {
            Tool::Sqlx => (
                format!(
                    "SELECT version, description, {}, checksum, {}, {} FROM {from} ORDER BY version",
                    t.as_bigint("CASE WHEN success THEN 1 ELSE 0 END"),
                    t.as_bigint("execution_time"),
                    t.as_text("installed_on"),
                ),
                &[Ty::I64, Ty::Text, Ty::I64, Ty::Bytes, Ty::I64, Ty::OptText],
            ),
            Tool::Diesel => (
                format!(
                    "SELECT version, {} FROM {from} ORDER BY version",
                    t.as_text("run_on")
                ),
                &[Ty::Text, Ty::OptText],
            ),
            Tool::Refinery => (
                format!(
                    "SELECT {}, name, applied_on, checksum FROM {from} ORDER BY version",
                    t.as_bigint("version")
                ),
                &[Ty::I64, Ty::OptText, Ty::OptText, Ty::OptText],
            ),
        }
    }
}

/// Read the tool's rows and match each to the binary's migration.
async fn read<'m>(
    conn: &mut Conn<'_>,
    table: &Table,
    set: &'m MigrationSet,
    tool: Tool,
) -> Result<Vec<Taken<'m>>, String> {
    let (sql, types) = tool.rows_query(table);
    let rows = conn
        .fetch(sql, types)
        .await
        .map_err(|error| format!("cannot read it: {error}"))?;
    let by_diesel_key: HashMap<String, &Migration> = match tool {
        Tool::Diesel => set.iter().map(|m| (diesel_key(m), m)).collect(),
        _ => HashMap::new(),
    };
    let mut taken = rows
        .iter()
        .map(|row| match tool {
            Tool::Sqlx => sqlx_row(set, row),
            Tool::Diesel => diesel_row(&by_diesel_key, row),
            Tool::Refinery => refinery_row(set, row),
        })
        .collect::<Result<Vec<_>, String>>()?;
    taken.sort_by_key(|t| t.migration.version());
    Ok(taken)
}

impl<'m> Taken<'m> {
    /// `migration` as `tool` recorded it: applied at `applied` (as the tool
    /// wrote the time), in `ms` milliseconds.
    fn imported(migration: &'m Migration, tool: Tool, applied: Option<&str>, ms: i64) -> Self {
        Taken {
            migration,
            note: format!("imported from {tool} (applied {})", applied.unwrap_or("?")),
            duration_ms: ms,
        }
    }
}

fn unknown(version: &str, description: &str) -> String {
    format!(
        "it records migration {version}{description}, which this binary does not have: build \
         the binary from the folder that tool applied (a file deleted or renamed?)"
    )
}

/// The refusal of a migration whose text is not what the tool applied.
fn modified(migration: &Migration, tool: Tool, recorded: &str) -> String {
    format!(
        "migration {} ({}) is not the file {tool} applied ({recorded} recorded): restore the \
         file as it was applied",
        migration.version(),
        migration.source_path()
    )
}

fn sqlx_row<'m>(set: &'m MigrationSet, row: &[Cell]) -> Result<Taken<'m>, String> {
    let version = row.first().and_then(Cell::i64).unwrap_or_default();
    let description = row.get(1).and_then(Cell::text).unwrap_or_default();
    if row.get(2).and_then(Cell::i64) != Some(1) {
        return Err(format!(
            "migration {version} ({description}) is recorded as failed (success = false): \
             sqlx stopped in the middle of it; finish or revert it by hand and delete its \
             row (or let sqlx finish it), then run again"
        ));
    }
    let Some(migration) = set.get(version) else {
        return Err(unknown(&version.to_string(), &format!(" ({description})")));
    };
    let recorded = row.get(3).map(Cell::bytes).unwrap_or_default();
    let matches = as_on_disk(migration.up_sql())
        .iter()
        .any(|text| Sha384::digest(text.as_bytes())[..] == *recorded);
    if !matches {
        let sum = format!("SHA-384 {}", short_hex(recorded));
        return Err(modified(migration, Tool::Sqlx, &sum));
    }
    // sqlx records nanoseconds.
    let ms = row.get(4).and_then(Cell::i64).unwrap_or_default() / 1_000_000;
    Ok(Taken::imported(migration, Tool::Sqlx, row.get(5).and_then(Cell::text), ms))
}

/// The version diesel gives a migration: its folder's, or, for a file,
/// its number.
fn diesel_key(migration: &Migration) -> String {
    let path = migration.source_path();
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".sql") {
        migration.version().to_string()
    } else {
        stowage_layout::diesel_version(name)
    }
}

fn diesel_row<'m>(
    by_key: &HashMap<String, &'m Migration>,
    row: &[Cell],
) -> Result<Taken<'m>, String> {
    let version = row.first().and_then(Cell::text).unwrap_or_default();
    let Some(&migration) = by_key.get(version) else {
        return Err(unknown(
            &format!("\"{version}\""),
            " (diesel's version of a folder is its name before the first `_`, dashes removed)",
        ));
    };
    let run_on = row.get(1).and_then(Cell::text);
    Ok(Taken::imported(migration, Tool::Diesel, run_on, 0))
}

/// refinery's checksum: SipHash-1-3 of the name, the version (an `i32`, or
/// an `i64` with its `int8-versions` feature) and the SQL, through `Hash`.
fn refinery_checksums(name: &str, version: i64, sql: &str) -> Vec<String> {
    let hash = |version: &dyn Fn(&mut siphasher::sip::SipHasher13)| {
        let mut hasher = siphasher::sip::SipHasher13::new();
        name.hash(&mut hasher);
        version(&mut hasher);
        sql.hash(&mut hasher);
        hasher.finish().to_string()
    };
    let mut sums = vec![hash(&|h| version.hash(h))];
    if let Ok(small) = i32::try_from(version) {
        sums.push(hash(&|h| small.hash(h)));
    }
    sums
}

fn refinery_row<'m>(set: &'m MigrationSet, row: &[Cell]) -> Result<Taken<'m>, String> {
    let version = row.first().and_then(Cell::i64).unwrap_or_default();
    let name = row.get(1).and_then(Cell::text).unwrap_or_default();
    let Some(migration) = set.get(version) else {
        return Err(unknown(&version.to_string(), &format!(" ({name})")));
    };
    let recorded = row.get(3).and_then(Cell::text).unwrap_or_default();
    let matches = as_on_disk(migration.up_sql())
        .iter()
        .any(|sql| refinery_checksums(name, version, sql).iter().any(|s| s == recorded));
    if !matches {
        return Err(modified(migration, Tool::Refinery, &format!("checksum {recorded}")));
    }
    Ok(Taken::imported(migration, Tool::Refinery, row.get(2).and_then(Cell::text), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_by_name() {
        for tool in Tool::ALL {
            assert_eq!(tool.name().parse::<Tool>(), Ok(tool));
        }
        assert!("flyway".parse::<Tool>().unwrap_err().contains("sqlx, diesel or refinery"));
    }

    #[test]
    fn texts_as_they_were_on_disk() {
        assert_eq!(as_on_disk("a;"), ["a;", "\u{feff}a;"]);
        assert_eq!(
            as_on_disk("a;\nb;\n"),
            ["a;\nb;\n", "a;\r\nb;\r\n", "\u{feff}a;\nb;\n", "\u{feff}a;\r\nb;\r\n"]
        );
    }
}
