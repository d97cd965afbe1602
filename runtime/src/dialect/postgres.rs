//! PostgreSQL: a session advisory lock keyed by database + schema + table;
//! each migration, its history row and `COMMIT` in one round trip.

use super::{BoxFuture, SqlDialect, hex};
use crate::engine::connection::{Cell, Conn, Ty, Value};
use crate::engine::history::Table;
use crate::engine::lease::{self, LeaseSql};
use crate::engine::lock::SessionLock;
use crate::engine::statements::{self, Syntax, split};
use crate::error::Spot;
use crate::engine::stepwise;
use crate::{Dialect, Error, Migration};
use std::time::Duration;

/// PostgreSQL.
#[derive(Debug)]
pub(crate) struct Postgres;

/// The advisory lock's key: the database, then the history table's schema
/// and name (the statement's one parameter).
macro_rules! key {
    () => {
        "hashtextextended('stowage:' || current_database() || ':' || $1, 0)"
    };
}

const LOCK: SessionLock = SessionLock {
    try_lock: concat!(
        "SELECT CASE WHEN pg_try_advisory_lock(",
        key!(),
        ") THEN 1::bigint ELSE 0::bigint END"
    ),
    unlock: concat!(
        "SELECT CASE WHEN pg_advisory_unlock(",
        key!(),
        ") THEN 1::bigint ELSE 0::bigint END"
    ),
    holder: concat!(
        "SELECT 'pid ' || a.pid || coalesce(' (' || nullif(a.application_name, '') || ')', '') \
         || ' from ' || coalesce(host(a.client_addr), 'a local socket') \
         || ', connected at ' || to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid() \
         AND ((l.classid::bigint << 32) | l.objid::bigint) = ",
        key!(),
        " LIMIT 1"
    ),
    refused: "the database refused the migration lock (pg_try_advisory_lock returned NULL)",
};

/// A lease's SQL on PostgreSQL (`Lock::Lease`).
const LEASE: LeaseSql = LeaseSql {
    timestamp: "TIMESTAMPTZ",
    table_options: "",
    now: "clock_timestamp()",
    interval: |seconds| format!("interval '{seconds} seconds'"),
    session_id: "SELECT pg_backend_pid()::bigint",
    session_busy: |id| {
        format!("SELECT COUNT(*)::bigint FROM pg_stat_activity WHERE pid = {id} AND state <> 'idle'")
    },
    // A duplicate key, a serialization failure, a deadlock.
    contended: &["23505", "40001", "40P01"],
};

impl SqlDialect for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn syntax(&self) -> Syntax {
        Syntax {
            backslash_escapes: false,
            hash_comments: false,
            dollar_quotes: true,
            dash_comment_needs_space: false,
            escape_strings: true,
            nested_comments: true,
        }
    }

    /// `COPY … FROM stdin`: its data follows the statement in the file, and
    /// only psql knows to send it.
    fn unsupported<'s>(&self, sql: &'s str) -> Option<(&'s str, &'static str)> {
        split(sql, self.syntax()).into_iter().find_map(|statement| {
            let code = statements::code_of(statement, self.syntax());
            let words: Vec<String> = code
                .split_whitespace()
                .map(str::to_ascii_uppercase)
                .collect();
            let copy_from_stdin = words.first().is_some_and(|w| w == "COPY")
                && words
                    .windows(2)
                    .any(|pair| pair[0] == "FROM" && pair[1].trim_end_matches(';') == "STDIN");
            copy_from_stdin.then_some((
                code,
                "is COPY … FROM stdin, whose data only psql can send; write the rows as INSERT \
                 statements (pg_dump --inserts), or COPY from a file the server can read",
            ))
        })
    }

    fn quote(&self, name: &str) -> String {
        format!("\"{name}\"")
    }

    fn param(&self, n: usize) -> String {
        format!("${n}")
    }

    /// `decode('…', 'hex')`: no backslash, so that the literal means the
    /// same under `standard_conforming_strings = off`.
    fn bytes_literal(&self, bytes: &[u8]) -> String {
        format!("decode('{}', 'hex')", hex(bytes))
    }

    fn text_literal(&self, text: &str) -> String {
        format!(
            "convert_from({}, 'UTF8')",
            self.bytes_literal(text.as_bytes())
        )
    }

    fn create_history_sql(&self, table: &str, schema: Option<&str>) -> String {
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n\
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
        );
        match schema {
            Some(schema) => format!("CREATE SCHEMA IF NOT EXISTS {schema};\n{create}"),
            None => create,
        }
    }

    fn applied_at_as_text(&self) -> &'static str {
        "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    }

    fn is_undefined_table(&self, error: &sqlx::Error) -> bool {
        error
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code == "42P01")
    }

    /// The schema the table resolves to now: a migration may change the
    /// `search_path`.
    fn home<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        table: &'c Table,
    ) -> BoxFuture<'c, Result<Option<String>, Error>> {
        Box::pin(async move {
            let sql = "SELECT quote_ident(n.nspname) FROM pg_class c \
                       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)";
            let cell = conn
                .fetch_one(sql.to_owned(), vec![Value::Text(table.name.clone())], Ty::OptText)
                .await
                .map_err(Error::db("cannot find the history table's schema"))?;
            Ok(cell.as_ref().and_then(Cell::text).map(str::to_owned))
        })
    }

    /// A standby replays its primary; `default_transaction_read_only` (or
    /// `transaction_read_only` set for the session) refuses writes.
    fn read_only<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
    ) -> BoxFuture<'c, Result<Option<String>, Error>> {
        Box::pin(async move {
            let sql = "SELECT CASE WHEN pg_is_in_recovery() THEN 'it is a standby, in recovery' \
                       WHEN current_setting('transaction_read_only') = 'on' THEN 'its sessions are \
                       read-only (default_transaction_read_only)' ELSE '' END";
            let cell = conn
                .fetch_one(sql.to_owned(), Vec::new(), Ty::Text)
                .await
                .map_err(Error::db("cannot ask whether the server takes writes"))?;
            Ok(cell
                .as_ref()
                .and_then(Cell::text)
                .filter(|reason| !reason.is_empty())
                .map(str::to_owned))
        })
    }

    fn lock<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        table: &'c Table,
        timeout: Duration,
    ) -> BoxFuture<'c, Result<Option<&'static str>, Error>> {
        Box::pin(async move {
            match table.lock {
                crate::Lock::Lease => lease::take(conn, table, LEASE, timeout).await,
                _ => LOCK.poll(conn, table, timeout).await,
            }
            .map(|()| None)
        })
    }

    fn unlock<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        table: &'c Table,
        _keep: bool,
    ) -> BoxFuture<'c, Result<(), Error>> {
        Box::pin(async move {
            match table.lock {
                crate::Lock::Lease => lease::release(conn, table).await,
                _ => LOCK.release(conn, table).await,
            }
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        table: &'c Table,
        m: &'c Migration,
        applied_by: &'c str,
    ) -> BoxFuture<'c, Result<(), Error>> {
        if m.no_transaction() {
            return Box::pin(stepwise::apply(conn, table, m, applied_by));
        }
        // The SQL, its history row and the commit in one round trip.
        let insert = format!(
            "INSERT INTO {} (version, description, checksum, chain, state, duration_ms, applied_by) VALUES \
             ({}, {}, {}, {}, 'applied', (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, {})",
            table.name,
            m.version(),
            self.text_literal(m.description()),
            self.bytes_literal(m.checksum()),
            self.bytes_literal(m.chain()),
            self.text_literal(applied_by),
        );
        let script = format!("{BEGIN}{}\n;\n{insert};\nCOMMIT;", m.up_sql());
        Box::pin(in_transaction(conn, script, m, move |error| {
            Error::failed(m, spot(&error, m.up_sql()), true)(error)
        }))
    }

    fn revert<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        table: &'c Table,
        m: &'c Migration,
    ) -> BoxFuture<'c, Result<(), Error>> {
        if m.no_transaction() {
            return Box::pin(stepwise::revert(conn, table, m));
        }
        let script = format!(
            "BEGIN;\n{}\n;\n{};\nCOMMIT;",
            m.down_sql().unwrap_or_default(),
            table.delete_sql(m.version())
        );
        Box::pin(in_transaction(conn, script, m, Error::undo_failed(m, None)))
    }
}

/// What a migration's script starts with, before the migration's SQL.
const BEGIN: &str = "BEGIN;\n";

/// Where in the migration's SQL (`up`) the server says the error is: its
/// position counts characters of the script, which starts with [`BEGIN`].
fn spot(error: &sqlx::Error, up: &str) -> Spot {
    let Some(offset) = position(error).and_then(|p| p.checked_sub(1 + BEGIN.chars().count()))
    else {
        return Spot::default();
    };
    let Some((at, _)) = up.char_indices().nth(offset) else {
        return Spot::default();
    };
    let statements = split(up, Postgres.syntax());
    let found = statements.iter().enumerate().find(|(_, statement)| {
        let end = statement.as_ptr() as usize - up.as_ptr() as usize + statement.len();
        at < end
    });
    let mut spot = match found {
        Some((index, statement)) => statements::spot(up, index, statement, Postgres.syntax()),
        None => Spot::default(),
    };
    // The line of the error itself, which may be inside a long statement.
    spot.line = Some(up[..at].matches('\n').count() + 1);
    spot
}

/// The error's position in the query, in characters from 1.
#[cfg(feature = "postgres")]
fn position(error: &sqlx::Error) -> Option<usize> {
    use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
    let db = error.as_database_error()?.try_downcast_ref::<PgDatabaseError>()?;
    match db.position()? {
        PgErrorPosition::Original(position) => Some(position),
        PgErrorPosition::Internal { .. } => None,
    }
}

/// Without the PostgreSQL driver's own types (an `AnyPool` built without the
/// `postgres` feature), the position is not known.
#[cfg(not(feature = "postgres"))]
fn position(_: &sqlx::Error) -> Option<usize> {
    None
}

/// Run a `BEGIN; …; COMMIT;` script; when it fails, roll back and report
/// the failure with `failed`.
async fn in_transaction(
    conn: &mut Conn<'_>,
    script: String,
    m: &Migration,
    failed: impl FnOnce(sqlx::Error) -> Error,
) -> Result<(), Error> {
    if let Err(error) = conn.script(script).await {
        conn.script("ROLLBACK".to_owned())
            .await
            .map_err(Error::db(format!(
                "cannot roll back migration {}",
                m.version()
            )))?;
        return Err(failed(error));
    }
    Ok(())
}
