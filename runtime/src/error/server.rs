//! What the servers' errors say, in one place: a server's own words without
//! what a driver adds, a read-only server, a statement that cannot run in a
//! transaction, advice for a failed connection, and which errors waiting or
//! trying again can get past. (The codes of the lease's races, and of a
//! missing table, are in each dialect's module.)

pub(crate) fn server_message(error: &sqlx::Error) -> String {
    error
        .as_database_error()
        .map_or_else(|| error.to_string(), |db| db.message().to_owned())
}

/// Why the server refused a write because it takes none, from its error:
/// PostgreSQL's 25006, MySQL's `--read-only` and read-only transaction
/// errors, SQLite's read-only file.
pub(crate) fn read_only_reason(error: &sqlx::Error) -> Option<&'static str> {
    let db = error.as_database_error()?;
    match db.code().as_deref() {
        Some("25006") => Some("the session is read-only"),
        // MySQL's 1290 (`--read-only`), whose SQLSTATE is the generic HY000.
        _ if db.message().contains("--read-only") => Some("the server is read-only"),
        Some("8") if db.message().contains("readonly database") => Some(
            "the SQLite file is read-only (opened read-only, or the file or its folder cannot be \
             written)",
        ),
        _ => None,
    }
}

/// `message`, and when the server refused a statement inside a transaction
/// (PostgreSQL's `CREATE INDEX CONCURRENTLY`, SQLite's `VACUUM`), how to
/// run the migration outside one.
pub(crate) fn with_transaction_advice(error: &sqlx::Error, message: String) -> String {
    let inside = error.as_database_error().is_some_and(|db| {
        db.code().as_deref() == Some("25001") || db.message().contains("within a transaction")
    });
    match inside {
        true => format!(
            "{message} (to run this migration outside a transaction, put \
             `-- stowage:no-transaction` at the top of its file)"
        ),
        false => message,
    }
}

/// What to check after [`Error::Connect`](crate::Error::Connect), for the case at hand.
pub(crate) fn connect_advice(url: &str, reason: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "check the file's path, and that its folder exists and can be written by this user"
    } else if (reason.contains("role") && reason.contains("does not exist"))
        || reason.contains("password authentication failed")
        || (reason.contains("Access denied for user") && !reason.contains("to database"))
    {
        "check the user name and password in the URL: the server does not let this user log in"
    } else if (reason.contains("database") && reason.contains("does not exist"))
        || reason.contains("Unknown database")
    {
        "check the database's name at the end of the URL (`migrate up` and `stamp` create a \
         missing database, the other subcommands do not)"
    } else if reason.contains("permission denied for database")
        || (reason.contains("Access denied for user") && reason.contains("to database"))
    {
        "the user may log in but not use this database: grant it (PostgreSQL: `GRANT CONNECT \
         ON DATABASE …`; MySQL: `GRANT … ON db.* TO …`), or connect as a user that may"
    } else if [
        "too many clients",
        "too many connections",
        "connection slots are reserved",
        "max_user_connections",
    ]
    .iter()
    .any(|full| reason.to_ascii_lowercase().contains(full))
    {
        "the server (or this user's connection limit) has no connection to spare: close idle \
         connections (each pool keeps up to its max_connections), or raise the server's \
         max_connections or the user's limit"
    } else {
        "check that the server is running and reachable from here, and the URL's host, port, \
         user and password"
    }
}

/// Whether waiting (or another connection) may fix the error: the server is
/// not up or not ready yet, or the connection was lost.
#[cfg(driver)]
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut => true,
        // PostgreSQL: too many clients.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("53300") => true,
        _ => is_connection_lost(error),
    }
}

/// Whether the server refused the user: a wrong password, or no right to
/// the database (which may then exist unseen by this user).
#[cfg(driver)]
pub(crate) fn is_denied(error: &sqlx::Error) -> bool {
    match error {
        // PostgreSQL: invalid authorization, wrong password, no CONNECT
        // privilege; MySQL: `Access denied …` (1044, 1045).
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("28000" | "28P01" | "42501"))
                || db.message().contains("Access denied")
        }
        _ => false,
    }
}

/// Whether the connection itself is gone: the network failed, or the
/// server is restarting, shutting down or starting up.
#[cfg(driver)]
pub(crate) fn is_connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            // PostgreSQL: shutting down or terminated, crashed, starting
            // up, connection failure.
            matches!(
                db.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "08006" | "08001" | "08003")
            ) || db.message().contains("starting up")
        }
        sqlx::Error::Protocol(message) => message.contains("reset") || message.contains("closed"),
        _ => false,
    }
}

/// Whether a statement failed on a deadlock or a serialization failure:
/// SQLSTATE 40001, which MySQL gives for its deadlock 1213 and a Galera
/// cluster for a certification failure, and PostgreSQL's 40P01.
#[cfg(driver)]
pub(crate) fn is_deadlock(error: &sqlx::Error) -> bool {
    has_code(error, &["40001", "40P01"])
}

/// Whether the server rolled the statement back for another transaction's
/// sake (SQLSTATE class 40: a deadlock, a serialization failure, a
/// cluster's certification), so that running it again may succeed.
#[cfg(driver)]
pub(crate) fn is_rolled_back(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code.starts_with("40"))
}

/// Whether the server's error has one of `codes` as its SQLSTATE.
#[cfg(driver)]
pub(crate) fn has_code(error: &sqlx::Error, codes: &[&str]) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| codes.contains(&code.as_ref()))
}
