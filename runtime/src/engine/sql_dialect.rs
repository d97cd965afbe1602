//! [`SqlDialect`]: what the engine needs of a database, which each module of
//! `dialect/` implements, one per database. The engine and the operations
//! are written once over it; which implementation serves a migrator is
//! chosen where its history [`Table`] is made (`Migrator::table`).

use crate::engine::connection::Conn;
use crate::engine::history::Table;
use crate::engine::lock::{Hold, Request, Settings};
use crate::engine::statements::Syntax;
use crate::{Dialect, Error, Migration};

/// A future that may cross threads, borrowing for `'a`: the trait's async
/// methods return it, so that the trait can be used as `dyn SqlDialect`.
pub(crate) type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the trait's async methods return: a [`BoxFuture`] of a result.
pub(crate) type Done<'a, T = ()> = BoxFuture<'a, Result<T, Error>>;

/// Where a dialect takes, releases or reads the lock: the session and the
/// history table it guards.
pub(crate) struct At<'c, 'p> {
    pub(crate) conn: &'c mut Conn<'p>,
    pub(crate) table: &'c Table,
}

/// Where one migration is applied or reverted: the session as the lock set
/// it up, and the history table that records it.
pub(crate) struct Under<'c, 'p> {
    pub(crate) conn: &'c mut Conn<'p>,
    pub(crate) table: &'c Table,
    pub(crate) settings: &'c Settings,
}

/// One database's way of doing what the engine needs.
pub(crate) trait SqlDialect: Send + Sync + std::fmt::Debug {
    /// The dialect's words: its name, lexing, quoting, literals, the history
    /// table's types and the errors that say a table or column is missing.
    fn vocabulary(&self) -> &'static Vocabulary;

    /// Which dialect this is.
    fn dialect(&self) -> Dialect {
        self.vocabulary().dialect
    }

    /// How the dialect's SQL is lexed, for splitting a script into statements.
    fn syntax(&self) -> Syntax {
        self.vocabulary().syntax
    }

    /// The statements of a script, for running it one statement (or unit)
    /// at a time, each a slice of `sql`.
    fn statements<'s>(&self, sql: &'s str) -> Vec<&'s str> {
        crate::engine::statements::split_one_by_one(sql, self.syntax())
    }

    /// The first statement of `sql` this dialect cannot run, with why and
    /// what to write instead; checked for every migration before any runs.
    fn unsupported<'s>(&self, _sql: &'s str) -> Option<(&'s str, &'static str)> {
        None
    }

    /// `name` as a quoted identifier (`name` is a checked plain identifier).
    fn quote(&self, name: &str) -> String {
        let q = self.vocabulary().quote;
        format!("{q}{name}{q}")
    }

    /// Bytes as a SQL literal.
    fn bytes_literal(&self, bytes: &[u8]) -> String {
        let [before, after] = self.vocabulary().bytes;
        format!("{before}{}{after}", hex(bytes))
    }

    /// Text as a SQL literal, safe whatever it holds: it travels as bytes.
    fn text_literal(&self, text: &str) -> String {
        let [before, after] = self.vocabulary().text;
        format!("{before}{}{after}", self.bytes_literal(text.as_bytes()))
    }

    /// The types of the history table's columns, for its one DDL
    /// (`engine::history`).
    fn history_types(&self) -> HistoryTypes {
        self.vocabulary().history_types
    }

    /// What creates the schema `schema` (quoted) holding the history table,
    /// when it does not exist; `None` where a schema is not created (an
    /// SQLite schema is a database the application attaches).
    fn create_schema_sql(&self, schema: &str) -> Option<String> {
        let create = self.vocabulary().create_schema?;
        Some(format!("{create} {schema}"))
    }

    /// The history table's `applied_at` column read as text.
    fn applied_at_as_text(&self) -> &'static str {
        self.vocabulary().applied_at_as_text
    }

    /// `expr` read as a 64-bit integer, whatever its integer or boolean type
    /// (another tool's history columns).
    fn as_bigint(&self, expr: &str) -> String {
        format!("CAST({expr} AS {})", self.vocabulary().cast_types[0])
    }

    /// `expr` read as text.
    fn as_text(&self, expr: &str) -> String {
        format!("CAST({expr} AS {})", self.vocabulary().cast_types[1])
    }

    /// Whether an error says the history table does not exist yet.
    fn is_undefined_table(&self, error: &sqlx::Error) -> bool {
        self.vocabulary().undefined_table.says(error)
    }

    /// Whether `error` says a column does not exist (a history table made
    /// before the column was).
    fn is_undefined_column(&self, error: &sqlx::Error) -> bool {
        self.vocabulary().undefined_column.says(error)
    }

    /// The schema or database, quoted, that the (existing) history table is
    /// in, where the session could move it: see `Table::pinned`.
    fn home<'c>(&'c self, _at: At<'c, '_>) -> Done<'c, Option<String>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Why the server or session cannot take writes (a standby, a read-only
    /// setting), asked before the lock is taken; `None` when it can.
    fn read_only<'c>(&'c self, _conn: &'c mut Conn<'_>) -> Done<'c, Option<String>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Take the migration lock, waiting as `request` says, and set the
    /// session up for migrating. Returns what the lock holds, with the statement
    /// that restores the session once the lock is released, if it changed
    /// anything.
    fn lock<'c>(&'c self, at: At<'c, '_>, request: &'c Request) -> Done<'c, Hold>;

    /// Release the migration lock, consuming what it held (the session's
    /// restoring statement is run by the caller). Where the lock is a
    /// transaction, `keep` says whether to commit the work done under it.
    fn unlock<'c>(&'c self, at: At<'c, '_>, hold: Hold, keep: bool) -> Done<'c>;

    /// Step outside the lock's transaction, if the lock is one, for a
    /// migration that must run outside any transaction; [`resume`] takes it
    /// again. Session locks stay held.
    ///
    /// [`resume`]: SqlDialect::resume
    fn suspend<'c>(&'c self, _conn: &'c mut Conn<'_>) -> Done<'c> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Take the lock's transaction again after [`suspend`](SqlDialect::suspend).
    fn resume<'c>(&'c self, _conn: &'c mut Conn<'_>) -> Done<'c> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// What is wrong with the data after a migration, before it commits:
    /// checks the database does not make by itself while migrating. Each
    /// problem is one line naming the table and row.
    fn integrity_problems<'c>(&'c self, _conn: &'c mut Conn<'_>) -> Done<'c, Vec<String>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Apply one migration and record it in the history table, on the
    /// session the lock set up.
    fn apply<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration, by: &'c str) -> Done<'c>;

    /// Run one migration's down SQL and remove its history row, on the
    /// session the lock set up.
    fn revert<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration) -> Done<'c>;
}

/// A dialect's words, as data (see [`SqlDialect::vocabulary`]).
#[derive(Debug)]
pub(crate) struct Vocabulary {
    /// Which dialect this is.
    pub(crate) dialect: Dialect,
    /// How its SQL is lexed.
    pub(crate) syntax: Syntax,
    /// What quotes an identifier, on both sides.
    pub(crate) quote: char,
    /// What stands before and after the hex digits of a bytes literal.
    pub(crate) bytes: [&'static str; 2],
    /// What stands before and after a bytes literal to read it as text.
    pub(crate) text: [&'static str; 2],
    /// The history table's column types.
    pub(crate) history_types: HistoryTypes,
    /// The statement that creates a schema if it does not exist, before its
    /// name; `None` where a schema is not created.
    pub(crate) create_schema: Option<&'static str>,
    /// The history table's `applied_at` column read as text.
    pub(crate) applied_at_as_text: &'static str,
    /// The types that `CAST` reads a 64-bit integer and text as.
    pub(crate) cast_types: [&'static str; 2],
    /// The errors that say a table does not exist.
    pub(crate) undefined_table: ErrorSign,
    /// The errors that say a column does not exist.
    pub(crate) undefined_column: ErrorSign,
}

/// How a database's error of one kind is recognised: by its code (a
/// SQLSTATE or the server's own number), or by its message.
#[derive(Debug)]
pub(crate) struct ErrorSign {
    /// The codes that say it.
    pub(crate) codes: &'static [&'static str],
    /// A message that starts with this says it.
    pub(crate) starts: Option<&'static str>,
    /// A message that contains all of these says it (none: not by message).
    pub(crate) contains: &'static [&'static str],
}

impl ErrorSign {
    /// Said by one of these codes.
    pub(crate) const fn codes(codes: &'static [&'static str]) -> ErrorSign {
        ErrorSign {
            codes,
            starts: None,
            contains: &[],
        }
    }

    /// Said by a message that starts with `start`.
    pub(crate) const fn starts(start: &'static str) -> ErrorSign {
        ErrorSign {
            codes: &[],
            starts: Some(start),
            contains: &[],
        }
    }

    /// Whether `error` is of this kind.
    pub(crate) fn says(&self, error: &sqlx::Error) -> bool {
        error.as_database_error().is_some_and(|db| {
            let message = db.message();
            db.code().is_some_and(|code| self.codes.contains(&code.as_ref()))
                || self.starts.is_some_and(|start| message.starts_with(start))
                || (!self.contains.is_empty()
                    && self.contains.iter().all(|part| message.contains(part)))
        })
    }
}

/// A dialect's names for the types of the history table's columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryTypes {
    /// A 64-bit integer (`version`, `failed_statement`, `duration_ms`).
    pub(crate) integer: &'static str,
    /// A 32-byte value (`checksum`, `chain`).
    pub(crate) bytes: &'static str,
    /// The short `state` text.
    pub(crate) state: &'static str,
    /// `applied_at`: the type and its default, the time of the insert.
    pub(crate) applied_at: &'static str,
    /// What follows the column list (MySQL's engine).
    pub(crate) options: &'static str,
    /// Text of any length (a migration's stored down SQL).
    pub(crate) long_text: &'static str,
}

impl HistoryTypes {
    /// PostgreSQL's names, the ones the other dialects start from: each
    /// says where it differs.
    pub(crate) const STANDARD: HistoryTypes = HistoryTypes {
        integer: "BIGINT",
        bytes: "BYTEA",
        state: "TEXT",
        applied_at: "TIMESTAMPTZ NOT NULL DEFAULT now()",
        options: "",
        long_text: "TEXT",
    };
}

/// The hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
