//! MySQL and MariaDB: a `GET_LOCK` session lock; each migration in one
//! multi-statement round trip whose history row records the statements
//! durably done, since DDL commits by itself.

use super::{At, Done, ErrorSign, HistoryTypes, SqlDialect, Under, Vocabulary};
use crate::engine::connection::{Cell, Conn, RESYNC, Ty};
use crate::engine::history::{Entry, RowState, Table, Took};
use crate::engine::lease::{self, LeaseSql};
use crate::engine::lock::{Hold, Lease, Request, SessionLock};
use crate::engine::statements::{self, Syntax, line_of, needs_terminator};
use crate::error::{Spot, excerpt, server_message};
use crate::engine::stepwise;
use crate::{Dialect, Error, Migration};

mod script;

use script::Unit;

/// MySQL and MariaDB.
#[derive(Debug)]
pub(crate) struct MySql;

/// The lock's name: a hash of the current database, then the history
/// table's schema and name (`{key}`, written in as a literal).
macro_rules! key {
    () => {
        "CONCAT('stowage:', LEFT(SHA1(CONCAT(COALESCE(DATABASE(), ''), ':', {key})), 40))"
    };
}

/// Gives the session back the sql_mode it had before migrating.
const RESTORE_SQL_MODE: &str = "SET SESSION sql_mode = @stowage_sql_mode";

const LOCK: SessionLock = SessionLock {
    try_lock: concat!("SELECT CAST(GET_LOCK(", key!(), ", 0) AS SIGNED)"),
    unlock: concat!("SELECT CAST(RELEASE_LOCK(", key!(), ") AS SIGNED)"),
    holder: concat!(
        "SELECT CONCAT('connection ', p.ID, ' of ', p.USER, ' from ', p.HOST) \
         FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(",
        key!(),
        ")"
    ),
    refused: "the database refused the migration lock (GET_LOCK returned NULL)",
    begin: None,
    missed: None,
};

/// A lease's SQL on MySQL and MariaDB.
const LEASE: LeaseSql = LeaseSql {
    timestamp: "DATETIME(6)",
    table_options: " ENGINE = InnoDB",
    now: "NOW(6)",
    interval: |seconds| format!("INTERVAL {seconds} SECOND"),
    session_id: "SELECT CAST(CONNECTION_ID() AS SIGNED)",
    session_busy: |id| {
        format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id} AND COMMAND <> 'Sleep'"
        )
    },
    // A duplicate key; a deadlock, which is also how a Galera cluster's
    // certification refuses one of two writers.
    contended: &["23000", "40001"],
    // `CREATE TABLE IF NOT EXISTS` of two sessions at once: both succeed.
    created_meanwhile: &[],
};

/// Whether the server is a node of a Galera cluster.
async fn is_galera(conn: &mut Conn<'_>) -> Result<bool, Error> {
    let rows = conn
        .fetch(
            "SHOW VARIABLES WHERE Variable_name = 'wsrep_on'".to_owned(),
            &[Ty::Text, Ty::Text],
        )
        .await
        .map_err(Error::db("cannot ask whether the server is in a Galera cluster"))?;
    Ok(rows.iter().any(|row| row.get(1).and_then(|c| c.text()) == Some("ON")))
}

/// Also a lease, on a Galera cluster (where `GET_LOCK` holds on one node
/// only) or when asked for; on a cluster, reads under it wait for what was
/// committed before on any node (`wsrep_sync_wait`), so the holder sees the
/// history the previous holder wrote.
async fn take_lease(
    conn: &mut Conn<'_>,
    table: &Table,
    request: &Request,
) -> Result<Option<Lease>, Error> {
    let galera = is_galera(conn).await?;
    if !galera && request.how != crate::Lock::Lease {
        return Ok(None);
    }
    let mut lease = lease::take(conn, table, LEASE, request).await?;
    if galera {
        let causal = conn
            .script(
                "SET @stowage_sync_wait = @@SESSION.wsrep_sync_wait, SESSION wsrep_sync_wait = 1"
                    .to_owned(),
            )
            .await
            .map_err(Error::db("cannot ask for causal reads on the cluster"));
        if let Err(error) = causal {
            let _ = lease::release(conn, Some(lease)).await;
            return Err(error);
        }
        // Released, the session reads as it did before.
        lease.release_sql = format!(
            "SET SESSION wsrep_sync_wait = @stowage_sync_wait; {}",
            lease.release_sql
        );
    }
    Ok(Some(lease))
}

/// MySQL's and MariaDB's words.
const VOCABULARY: Vocabulary = Vocabulary {
    dialect: Dialect::MySql,
    syntax: Syntax {
        backslash_escapes: true,
        hash_comments: true,
        dash_comment_needs_space: true,
        ..Syntax::STANDARD
    },
    quote: '`',
    bytes: ["X'", "'"],
    text: ["CONVERT(", " USING utf8mb4)"],
    history_types: HistoryTypes {
        integer: "BIGINT",
        bytes: "VARBINARY(32)",
        state: "VARCHAR(16)",
        applied_at: "DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
        options: " ENGINE=InnoDB",
        long_text: "LONGTEXT",
    },
    create_schema: Some("CREATE DATABASE IF NOT EXISTS"),
    applied_at_as_text: "CAST(applied_at AS CHAR)",
    cast_types: ["SIGNED", "CHAR"],
    undefined_table: ErrorSign {
        contains: &["Table", "doesn't exist"],
        ..ErrorSign::codes(&["42S02", "1146"])
    },
    undefined_column: ErrorSign {
        starts: Some("Unknown column"),
        ..ErrorSign::codes(&["42S22", "1054"])
    },
};

impl SqlDialect for MySql {
    fn vocabulary(&self) -> &'static Vocabulary {
        &VOCABULARY
    }


    /// The units of [`script`]: the server's statements where they are
    /// certain, the mysql client's under `DELIMITER`.
    fn statements<'s>(&self, sql: &'s str) -> Vec<&'s str> {
        script::units(sql).into_iter().map(|unit| unit.text).collect()
    }

    /// The current database: a migration may `USE` another.
    fn home<'c>(&'c self, at: At<'c, '_>) -> Done<'c, Option<String>> {
        let At { conn, .. } = at;
        Box::pin(async move {
            let database = conn
                .fetch_one("SELECT DATABASE()".to_owned(), Ty::OptText)
                .await
                .map_err(Error::db("cannot read the current database"))?;
            Ok(database
                .as_ref()
                .and_then(Cell::text)
                .map(|database| format!("`{}`", database.replace('`', "``"))))
        })
    }

    /// `read_only`, MySQL's `super_read_only`, and a read-only session
    /// (`transaction_read_only`, MariaDB's `tx_read_only`).
    fn read_only<'c>(&'c self, conn: &'c mut Conn<'_>) -> Done<'c, Option<String>> {
        Box::pin(async move {
            let sql = "SHOW VARIABLES WHERE Variable_name IN \
                       ('read_only', 'super_read_only', 'transaction_read_only', 'tx_read_only')";
            let rows = conn
                .fetch(sql.to_owned(), &[Ty::Text, Ty::Text])
                .await
                .map_err(Error::db("cannot ask whether the server takes writes"))?;
            let on: Vec<&str> = rows
                .iter()
                .filter(|row| row.get(1).and_then(|c| c.text()) == Some("ON"))
                .filter_map(|row| row.first().and_then(|c| c.text()))
                .collect();
            Ok(match on.first() {
                None => None,
                Some(name) if name.ends_with("transaction_read_only") || *name == "tx_read_only" => {
                    Some(format!("the session is read-only ({name})"))
                }
                Some(name) => Some(format!("the server is read-only ({name}), as a replica is")),
            })
        })
    }

    fn lock<'c>(&'c self, at: At<'c, '_>, request: &'c Request) -> Done<'c, Hold> {
        let At { conn, table } = at;
        Box::pin(async move {
            // A routine keeps the sql_mode it was created under: migrate under
            // the server's default, as the mysql client would, not the one
            // sqlx gives its connections (PIPES_AS_CONCAT, IGNORE_SPACE).
            conn.script(
                "SET @stowage_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = @@GLOBAL.sql_mode"
                    .to_owned(),
            )
            .await
            .map_err(Error::db("cannot set the session's sql_mode for migrating"))?;
            let started = std::time::Instant::now();
            let locked = LOCK.poll(conn, table, request).await;
            // On a Galera cluster GET_LOCK holds on this node only: the lease
            // holds across the cluster (see `lease`).
            let locked = match locked {
                Ok(()) => {
                    let left = request.timeout.saturating_sub(started.elapsed());
                    let leased = take_lease(conn, table, &request.within(left)).await;
                    if leased.is_err() {
                        let _ = LOCK.release(conn, table).await;
                    }
                    leased
                }
                Err(error) => Err(error),
            };
            match locked {
                Ok(lease) => Ok(Hold {
                    restore: Some(RESTORE_SQL_MODE),
                    lease,
                    ..Hold::default()
                }),
                Err(error) => {
                    let _ = conn.script(RESTORE_SQL_MODE.to_owned()).await;
                    Err(error)
                }
            }
        })
    }

    fn unlock<'c>(&'c self, at: At<'c, '_>, hold: Hold, _keep: bool) -> Done<'c> {
        let At { conn, table } = at;
        Box::pin(async move {
            let leased = lease::release(conn, hold.lease).await;
            let released = LOCK.release(conn, table).await;
            leased.and(released)
        })
    }

    /// Every MySQL migration runs as one script, `no-transaction` or not:
    /// its DDL commits by itself either way.
    fn apply<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration, by: &'c str) -> Done<'c> {
        let Under { conn, table, .. } = on;
        Box::pin(apply_script(conn, table, m, by))
    }

    fn revert<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration) -> Done<'c> {
        let Under { conn, table, .. } = on;
        Box::pin(async move {
            let result = stepwise::revert(conn, table, m).await;
            if let Some(home) = &table.home {
                // Back to the database the run started in, for the lock and
                // the next migration, whatever the down SQL did.
                let back = conn.script(format!("USE {home}")).await;
                return result.and(back.map_err(Error::db("cannot return to the database")));
            }
            result
        })
    }
}

/// MySQL, whose DDL commits by itself: a `failed` row first, then the
/// statements, then `applied`; all in one multi-statement round trip.
///
/// The script runs with `autocommit = 0`, so the statements between two
/// commit points commit together, and the row's count of statements done is
/// updated just before each statement that commits implicitly (DDL, or a
/// unit of several statements), whose commit makes it durable. A crash
/// leaves the row saying which statements are durably done and which one may
/// be; an error is reported with the failing unit, and the row then records
/// exactly what stayed (see [`mysql_failure`]).
async fn apply_script(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    let units = script::units(m.up_sql());
    let version = m.version();
    let entry = Entry::of(m, applied_by);
    // Each statement of the script, and the migration statement it is (if any).
    let mut script: Vec<(String, Option<usize>)> = vec![
        ("SET autocommit = 0".to_owned(), None),
        (table.insert_sql(&entry, RowState::Failed, Took::Ms(0)), None),
    ];
    let progress = |done: usize| (table.progress_sql(version, done), None);
    for (index, unit) in units.iter().enumerate() {
        let next_ddl = units.get(index + 1).is_some_and(commits_implicitly);
        script.push((unit.text.to_owned(), Some(index)));
        if several_results(unit) {
            // A procedure's result sets, or the statements of a unit the
            // server splits itself, are counted apart: say where we are.
            let position = script.len();
            script.push((format!("SELECT '{RESYNC}{position}'"), None));
        }
        // Before each statement that commits by itself, the count of
        // statements done so far, which that commit makes durable. Past the
        // last one nothing is written until the end: a crash leaves the row
        // saying the statements before that commit are done and that the one
        // committing may be (a DDL statement is applied whole or not at all).
        if next_ddl {
            script.push(progress(index + 1));
        }
    }
    if let Some(home) = &table.home {
        // Back to the database the run started in, for the lock and the next migration.
        script.push((format!("USE {home}"), None));
    }
    let took = Took::Sql("TIMESTAMPDIFF(MICROSECOND, applied_at, NOW(6)) DIV 1000");
    script.push((table.applied_sql(version, took), None));
    script.push(("COMMIT".to_owned(), None));
    script.push(("SET autocommit = 1".to_owned(), None));
    let text = join(script.iter().map(|(sql, _)| sql.as_str()));
    let several: Vec<bool> = script
        .iter()
        .map(|(_, index)| index.and_then(|i| units.get(i)).is_some_and(several_results))
        .collect();
    match conn.script_counted(text, &several).await {
        Ok(()) => Ok(()),
        Err((done, error)) => {
            let unit = script
                .get(done)
                .and_then(|(_, index)| *index)
                .and_then(|index| Some((index, units.get(index)?)));
            Err(mysql_failure(conn, table, m, unit, error).await)
        }
    }
}

/// Statements as one script, each ended by a `;` unless it ends with one:
/// a `;` more would be an empty statement, a syntax error.
fn join<'s>(statements: impl Iterator<Item = &'s str>) -> String {
    let mut script = String::new();
    for statement in statements {
        script.push_str(statement);
        script.push_str(if needs_terminator(statement, MySql.syntax()) {
            "\n;\n"
        } else {
            "\n"
        });
    }
    script
}

/// The first keyword of a unit, upper-cased, past its comments.
fn first_keyword(unit: &Unit<'_>) -> String {
    script::leading_words(unit.text, 1)
        .0
        .pop()
        .unwrap_or_default()
}

/// Whether a unit commits the open transaction by itself (a unit of several
/// statements may). `CREATE` / `DROP TEMPORARY TABLE` do not.
fn commits_implicitly(unit: &Unit<'_>) -> bool {
    let (words, _) = script::leading_words(unit.text, 2);
    let first = words.first().map_or("", String::as_str);
    !unit.single
        || (matches!(first, "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE")
            && words.get(1).is_none_or(|second| second != "TEMPORARY"))
}

/// Whether the server could not parse the statement (error 1064): then it
/// never ran, and a DDL statement never made its implicit commit.
fn is_parse_error(error: &sqlx::Error) -> bool {
    #[cfg(feature = "mysql")]
    if let Some(db) = error
        .as_database_error()
        .and_then(|db| db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
    {
        return db.number() == 1064;
    }
    // Without the driver's own error type, assume it did not run: the row
    // then claims less, never more.
    let _ = error;
    true
}

/// Whether a unit may give the server's results for more than one
/// statement: a `CALL` (one per result set of the procedure), or several
/// statements.
fn several_results(unit: &Unit<'_>) -> bool {
    !unit.single || first_keyword(unit) == "CALL"
}

/// After a MySQL migration failed in `unit` (its index and itself, when it
/// was the user's SQL that failed): roll back what is not durable, and
/// record the error on the row if the row itself is durable.
async fn mysql_failure(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    unit: Option<(usize, &Unit<'_>)>,
    error: sqlx::Error,
) -> Error {
    let mut reset = "ROLLBACK; SET autocommit = 1".to_owned();
    if let Some(home) = &table.home {
        reset.push_str(&format!("; USE {home}"));
    }
    let _ = conn.script(reset).await;
    let durable = table
        .rows(conn)
        .await
        .ok()
        .is_some_and(|rows| rows.iter().any(|r| r.version == m.version()));
    let spot = unit.map_or_else(Spot::default, |(index, unit)| {
        spot_in_unit(m.up_sql(), index, unit, &error)
    });
    if durable {
        let message = spot.message.clone().unwrap_or_else(|| server_message(&error));
        table.record_error(conn, m.version(), &message).await;
        if let Some((index, failing)) = unit {
            // What stayed for certain: everything up to the last implicit
            // commit known to have happened. A single DDL statement commits
            // before it runs, unless the server could not parse it; a unit
            // of several statements may or may not have, so it is not counted.
            let units = script::units(m.up_sql());
            let committed = |unit: &Unit<'_>| unit.single && commits_implicitly(unit);
            let done = if committed(failing) && !is_parse_error(&error) {
                index
            } else {
                units[..index]
                    .iter()
                    .rposition(committed)
                    .map_or(0, |last| last + 1)
            };
            let _ = conn.script(table.progress_sql(m.version(), done)).await;
        }
    }
    // Nothing durable happened when even the row was rolled back.
    Error::failed(m, spot, !durable)(error)
}

/// Where in the file a unit's error is. The server's `near '…' at line N`
/// quotes the script from the error on, stowage's statements after the unit
/// included, and counts lines from the statement's start: the quote is cut
/// at the unit's end and the line made the file's.
fn spot_in_unit(up: &str, index: usize, unit: &Unit<'_>, error: &sqlx::Error) -> Spot {
    let mut spot = statements::spot(up, index, unit.text, MySql.syntax());
    let message = server_message(error);
    let Some((before, near, line)) = near_quote(&message) else {
        return spot;
    };
    let near = users_part(unit.text, near);
    // Where the quote is in the unit, when it is there once.
    let found = (!near.is_empty())
        .then(|| unit.text.match_indices(near).map(|(at, _)| at).collect::<Vec<_>>())
        .and_then(|found| (found.len() == 1).then(|| found[0]));
    let file_line = match found {
        Some(at) => {
            let code = &unit.text[at..];
            spot.excerpt = Some(excerpt(code));
            Some(line_of(up, code))
        }
        // The server counts lines from the unit's first character.
        None if unit.single => line.map(|line| line_of(up, unit.text) + line.saturating_sub(1)),
        None => None,
    };
    spot.line = file_line.or(spot.line);
    spot.message = Some(match file_line {
        Some(line) => format!("{before}near '{near}' at line {line}"),
        None => format!("{before}near '{near}'"),
    });
    spot
}

/// A MySQL message's `near '…' at line N`: the text before it, the quote,
/// and N.
fn near_quote(message: &str) -> Option<(&str, &str, Option<usize>)> {
    let start = message.find("near '")?;
    let quote = &message[start + "near '".len()..];
    let (near, line) = match quote.rfind("' at line ") {
        Some(end) => (&quote[..end], quote[end + "' at line ".len()..].trim().parse().ok()),
        None => (quote.strip_suffix('\'')?, None),
    };
    Some((&message[..start], near, line))
}

/// The part of a quote of the script that is the unit's: from where it
/// starts (in the unit) to the unit's end, or all of it when it ends inside.
fn users_part<'q>(unit: &str, near: &'q str) -> &'q str {
    if unit.contains(near) {
        return near;
    }
    let mut end = near.len();
    while end > 0 {
        if near.is_char_boundary(end) && unit.ends_with(&near[..end]) {
            return &near[..end];
        }
        end -= 1;
    }
    ""
}
