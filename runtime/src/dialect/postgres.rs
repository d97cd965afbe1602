//! PostgreSQL: an advisory lock keyed by database + schema + table, held by
//! a transaction on a connection of its own (a session lock on a lent
//! connection); each migration, its history row and `COMMIT` in one round
//! trip.

use super::{At, Done, ErrorSign, HistoryTypes, SqlDialect, Under, Vocabulary};
use crate::engine::connection::{Cell, Conn, Ty};
use crate::engine::history::{Entry, RowState, Table, Took};
use crate::engine::lease::{self, LeaseSql};
use crate::engine::lock::{Due, Hold, Request, SessionLock, Wait};
use crate::engine::statements::{self, Syntax, split};
use crate::error::Spot;
use crate::engine::stepwise;
use crate::{Dialect, Error, Migration};
use std::time::Duration;

/// PostgreSQL.
#[derive(Debug)]
pub(crate) struct Postgres;

/// The advisory lock's key: the database, then the history table's schema
/// and name (`{key}`, written in as a literal).
macro_rules! key {
    () => {
        "hashtextextended('stowage:' || current_database() || ':' || {key}, 0)"
    };
}

/// The key each migration's transaction holds shared, so that a holder of
/// the lock can wait for a migration that outlived its run (`$1` as in
/// [`key`]): see [`await_orphans`].
macro_rules! running_key {
    () => {
        "hashtextextended('stowage-running:' || current_database() || ':' || $1, 0)"
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
    begin: None,
    missed: None,
};

/// The same lock held by a transaction, on a connection of its own: a
/// pooler in transaction mode (PgBouncer) keeps one server connection for a
/// transaction, so the lock holds behind it as it does on a direct server,
/// and the server releases it when that connection ends (a cancelled,
/// crashed or disconnected holder). A waiting session holds no transaction
/// between its polls. The session and transaction locks of one key exclude
/// each other, so older binaries, which take the session lock, are kept out
/// too.
const TRANSACTION_LOCK: SessionLock = SessionLock {
    begin: Some("BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0"),
    try_lock: concat!(
        "SELECT CASE WHEN pg_try_advisory_xact_lock(",
        key!(),
        ") THEN 1::bigint ELSE 0::bigint END"
    ),
    missed: Some("ROLLBACK"),
    refused: "the database refused the migration lock (pg_try_advisory_xact_lock returned NULL)",
    ..LOCK
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
    // A duplicate key in the catalog, a duplicate type or table.
    created_meanwhile: &["23505", "42710", "42P07"],
};

/// PostgreSQL's words.
const VOCABULARY: Vocabulary = Vocabulary {
    dialect: Dialect::Postgres,
    syntax: Syntax {
        dollar_quotes: true,
        escape_strings: true,
        nested_comments: true,
        escapes_after: Some(|words| conforming_strings(words).map(|conforming| !conforming)),
        ..Syntax::STANDARD
    },
    quote: '"',
    // `decode('…', 'hex')`: no backslash, so that the literal means the
    // same under `standard_conforming_strings = off`.
    bytes: ["decode('", "', 'hex')"],
    text: ["convert_from(", ", 'UTF8')"],
    history_types: HistoryTypes::STANDARD,
    create_schema: Some("CREATE SCHEMA IF NOT EXISTS"),
    applied_at_as_text: "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
    cast_types: ["BIGINT", "TEXT"],
    undefined_table: ErrorSign::codes(&["42P01"]),
    undefined_column: ErrorSign::codes(&["42703"]),
};

impl SqlDialect for Postgres {
    fn vocabulary(&self) -> &'static Vocabulary {
        &VOCABULARY
    }


    /// `COPY … FROM stdin`: its data follows the statement in the file, and
    /// only psql knows to send it. A psql meta-command (`\connect db`,
    /// `\set`, as dump scripts hold): only psql runs it, the server reads a
    /// syntax error.
    fn unsupported<'s>(&self, sql: &'s str) -> Option<(&'s str, &'static str)> {
        split(sql, self.syntax()).into_iter().find_map(|statement| {
            let code = statements::code_of(statement, self.syntax());
            if code.starts_with('\\') {
                let line = code.lines().next().unwrap_or(code).trim_end();
                return Some((
                    line,
                    "is a psql meta-command, which only psql runs (the server reads a syntax \
                     error); remove it: the URL says which database to connect to, and \
                     `\\set` variables can be placeholders (`${name}`)",
                ));
            }
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

    /// The schema the table resolves to now: a migration may change the
    /// `search_path`.
    fn home<'c>(&'c self, at: At<'c, '_>) -> Done<'c, Option<String>> {
        let At { conn, table } = at;
        Box::pin(async move {
            let sql = "SELECT quote_ident(n.nspname) FROM pg_class c \
                       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass({name})";
            let cell = conn
                .fetch_one(sql.replace("{name}", &self.text_literal(&table.name)), Ty::OptText)
                .await
                .map_err(Error::db("cannot find the history table's schema"))?;
            Ok(cell.as_ref().and_then(Cell::text).map(str::to_owned))
        })
    }

    /// A standby replays its primary; `default_transaction_read_only` (or
    /// `transaction_read_only` set for the session) refuses writes.
    fn read_only<'c>(&'c self, conn: &'c mut Conn<'_>) -> Done<'c, Option<String>> {
        Box::pin(async move {
            let sql = "SELECT CASE WHEN pg_is_in_recovery() THEN 'it is a standby, in recovery' \
                       WHEN current_setting('transaction_read_only') = 'on' THEN 'its sessions are \
                       read-only (default_transaction_read_only)' ELSE '' END";
            let cell = conn
                .fetch_one(sql.to_owned(), Ty::Text)
                .await
                .map_err(Error::db("cannot ask whether the server takes writes"))?;
            Ok(cell
                .as_ref()
                .and_then(Cell::text)
                .filter(|reason| !reason.is_empty())
                .map(str::to_owned))
        })
    }

    fn lock<'c>(&'c self, at: At<'c, '_>, request: &'c Request) -> Done<'c, Hold> {
        let At { conn, table } = at;
        Box::pin(async move {
            let started = std::time::Instant::now();
            let left = || request.within(request.timeout.saturating_sub(started.elapsed()));
            let mut hold = Hold::default();
            if request.how == crate::Lock::Lease {
                hold.lease = Some(lease::take(conn, table, LEASE, request).await?);
            } else if let Some(other) = conn.open_another().await {
                let mut other = other.map_err(Error::db(
                    "cannot open the connection that holds the migration lock",
                ))?;
                // On an error, `other` is dropped, and closed with its socket.
                TRANSACTION_LOCK.poll(&mut other, table, request).await?;
                await_orphans(&mut other, table, &left(), true).await?;
                hold.conn = Some(other);
                return Ok(hold);
            } else {
                // A lent connection: nothing to open another from.
                LOCK.poll(conn, table, request).await?;
            }
            if let Err(error) = await_orphans(conn, table, &left(), false).await {
                let _ = self.unlock(At { conn, table }, hold, false).await;
                return Err(error);
            }
            Ok(hold)
        })
    }

    fn unlock<'c>(&'c self, at: At<'c, '_>, hold: Hold, _keep: bool) -> Done<'c> {
        let At { conn, table } = at;
        Box::pin(async move {
            let Hold { conn: holding, lease, .. } = hold;
            if lease.is_some() {
                return lease::release(conn, lease).await;
            }
            let Some(mut holding) = holding else {
                return LOCK.release(conn, table).await;
            };
            if let Err(error) = holding.script("ROLLBACK".to_owned()).await {
                // The transaction ended before the run did (the connection
                // was lost): the server released the lock then.
                tracing::error!(
                    %error,
                    "the connection holding the migration lock was lost during the run; \
                     another process may have migrated at the same time"
                );
            }
            holding.close().await;
            Ok(())
        })
    }

    fn apply<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration, by: &'c str) -> Done<'c> {
        let Under { conn, table, .. } = on;
        if m.no_transaction() {
            return Box::pin(stepwise::apply(conn, table, m, by));
        }
        // The SQL, its history row and the commit in one round trip.
        let insert = table.insert_sql(
            &Entry::of(m, by),
            RowState::Applied,
            Took::Sql("(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint"),
        );
        let begin = self.begin(table);
        let script = format!("{begin}{}\n;\n{insert};\nCOMMIT;", m.up_sql());
        let before = begin.chars().count();
        Box::pin(in_transaction(conn, script, m, move |error| {
            Error::failed(m, spot(&error, m.up_sql(), before), true)(error)
        }))
    }

    fn revert<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration) -> Done<'c> {
        let Under { conn, table, .. } = on;
        if m.no_transaction() {
            return Box::pin(stepwise::revert(conn, table, m));
        }
        let begin = self.begin(table);
        let down = m.down_sql().unwrap_or_default();
        let script = format!("{begin}{down}\n;\n{};\nCOMMIT;", table.delete_sql(m.version()));
        let before = begin.chars().count();
        Box::pin(in_transaction(conn, script, m, move |error| {
            Error::undo_failed(m, spot(&error, down, before))(error)
        }))
    }
}

impl Postgres {
    /// What a migration's script starts with, before the migration's SQL:
    /// its transaction, holding the [`running_key`] shared until it ends.
    fn begin(&self, table: &Table) -> String {
        format!(
            "BEGIN; SELECT pg_advisory_xact_lock_shared({});\n",
            running_key!().replace("$1", &self.text_literal(&table.key))
        )
    }
}

/// Wait, holding the lock, until no migration of an earlier holder still
/// runs on the server: a run cancelled or killed in the middle of a
/// migration leaves its statement running there (the server notices a
/// closed client only when it next writes to it), while the connection that
/// held its lock is gone. Each migration's transaction holds the
/// [`running_key`] shared; taking it exclusively, and letting it go at once,
/// waits for them. `in_transaction`: `conn` holds the lock in a transaction
/// (a savepoint is used); otherwise a transaction of its own.
async fn await_orphans(
    conn: &mut Conn<'_>,
    table: &Table,
    request: &Request,
    in_transaction: bool,
) -> Result<(), Error> {
    let mut wait = Wait::new(request);
    let take = running_key!().replace("$1", &Postgres.text_literal(&table.key));
    // A first short try, so that a wait is said at once; then one try per
    // report, every 5 s, as the lock's own wait is. The server waits.
    let mut chunk = Duration::from_millis(100);
    loop {
        let ms = chunk.min(wait.left()).as_millis().max(1);
        let (open, undo) = match in_transaction {
            true => ("SAVEPOINT stowage_orphans", "ROLLBACK TO SAVEPOINT stowage_orphans"),
            false => ("BEGIN", "ROLLBACK"),
        };
        let sql = format!(
            "{open}; SET LOCAL lock_timeout = '{ms}ms'; SELECT pg_advisory_xact_lock({take}); {undo}"
        );
        let Err(error) = conn.script(sql).await else {
            return Ok(());
        };
        let _ = conn.script(undo.to_owned()).await;
        let code = error.as_database_error().and_then(|db| db.code());
        if code.is_none_or(|code| code != "55P03") {
            return Err(Error::db("cannot take the migration lock")(error));
        }
        let holder = orphans(conn, &take).await;
        match wait.due() {
            Due::GiveUp(waited) => {
                let holder = Some(holder);
                return Err(Error::LockTimeout { waited, holder });
            }
            Due::Report(waited) => wait.say(Some(&holder), waited),
            Due::Nothing => {}
        }
        chunk = Duration::from_secs(5);
    }
}

/// What holds the [`running_key`] shared, as a lock holder is named: which
/// server process, since when, and the first line of its migration.
async fn orphans(conn: &mut Conn<'_>, key: &str) -> String {
    // A bigint advisory key is shown as its high (classid) and low (objid)
    // 32 bits. The migration's script starts with its `BEGIN` line.
    let sql = format!(
        "SELECT a.pid::bigint, to_char(a.xact_start AT TIME ZONE 'UTC',          'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), left(split_part(a.query, chr(10), 2), 80)          FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid          WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ShareLock'          AND ((l.classid::bigint << 32) | l.objid::bigint) = {key} ORDER BY a.xact_start"
    );
    let found = conn
        .fetch(sql, &[Ty::I64, Ty::OptText, Ty::OptText])
        .await
        .unwrap_or_default();
    let described: Vec<String> = found
        .iter()
        .map(|row| {
            let pid = row[0].i64().unwrap_or_default();
            let since = row[1].text().unwrap_or("?");
            let first = row[2].text().unwrap_or("").trim();
            format!("server process {pid}, running since {since}: {first}")
        })
        .collect();
    let running = match described.as_slice() {
        [] => String::new(),
        list => format!(" ({})", list.join("; ")),
    };
    format!(
        "a migration still running on the server{running}, left by a run that ended without \
         finishing it (cancelled or killed)"
    )
}

/// Where in the migration's SQL (`up`, or the down SQL) the server says the error is: its
/// position counts characters of the script, in which `before` characters
/// come before the migration's SQL.
fn spot(error: &sqlx::Error, up: &str, before: usize) -> Spot {
    let Some(offset) = position(error).and_then(|p| p.checked_sub(1 + before))
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
            .map_err(Error::not_rolled_back(m))?;
        return Err(failed(error));
    }
    Ok(())
}

/// What a PostgreSQL statement (its words) sets `standard_conforming_strings`
/// to: `SET [SESSION | LOCAL] standard_conforming_strings {= | TO} …`,
/// `RESET standard_conforming_strings`, `RESET ALL`.
fn conforming_strings(words: &[String]) -> Option<bool> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let value = match words.as_slice() {
        ["RESET", "STANDARD_CONFORMING_STRINGS" | "ALL"] => return Some(true),
        ["SET", "SESSION" | "LOCAL", "STANDARD_CONFORMING_STRINGS", rest @ ..]
        | ["SET", "STANDARD_CONFORMING_STRINGS", rest @ ..] => rest.iter().rfind(|w| **w != "TO")?,
        _ => return None,
    };
    match *value {
        "OFF" | "FALSE" | "NO" => Some(false),
        "ON" | "TRUE" | "YES" | "DEFAULT" => Some(true),
        _ => None,
    }
}
