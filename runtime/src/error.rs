//! [`Error`]: everything that can go wrong, with what to do about it.

use std::time::Duration;

/// The error of every fallible stowage operation.
///
/// Messages name the migration (version and file) and say what to do next.
/// No message ever holds a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A migrations folder given at start-up does not follow the naming rules.
    #[error("the migrations folder is invalid; fix these files and rebuild:\n  {}", problems.join("\n  "))]
    InvalidSource {
        /// One line per problem, each naming its file.
        problems: Vec<String>,
    },

    /// A setting of the migrator is not valid.
    #[error("invalid stowage configuration: {0}")]
    InvalidConfig(String),

    /// The binary has no migrations for the database's dialect.
    #[error(
        "the embedded migrations have no `{dialect}/` folder, so there is nothing to apply to this \
         {dialect} database; add `migrations/{dialect}/` or connect to another database"
    )]
    NoMigrationsForDialect {
        /// The dialect of the database.
        dialect: crate::Dialect,
    },

    /// An operation was given a target it cannot go to.
    #[error("{0}")]
    InvalidTarget(String),

    /// A migration to revert has no down SQL.
    #[error(
        "migration {version} ({source_path}) has no down SQL, so it cannot be undone; nothing was \
         changed. Add a `.down.sql` (or diesel `down.sql`), or undo fewer migrations"
    )]
    Irreversible {
        /// The version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
    },

    /// Reverting a migration failed.
    #[error(
        "undoing migration {version} ({source_path}) failed{}: {source}; its history row was kept. \
         Fix the down SQL or the database, then undo again",
        statement.map(|s| format!(" at statement {}", s + 1)).unwrap_or_default()
    )]
    UndoFailed {
        /// The version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
        /// The index (from 0) of the failing statement, for migrations run
        /// statement by statement.
        statement: Option<i64>,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },

    /// A recorded chain value does not match the binary's, although the
    /// checksum does: migrations were inserted before it or reordered.
    #[error(
        "the history row of migration {version} ({source_path}) vouches for another sequence of \
         migrations than the binary's (were migrations added before it?); run the binary's `run` with \
         out-of-order allowed, or `repair --accept-checksums` if the history is right"
    )]
    ChainMismatch {
        /// The version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
    },

    /// The database could not be reached (after waiting for it), or refused
    /// the connection.
    #[error(
        "cannot connect to {url} ({attempts} attempt{} over {waited:.1?}): {reason}; check that the \
         server is running and reachable from here, and the URL's host, port, user and password",
        if *attempts == 1 { "" } else { "s" }
    )]
    Connect {
        /// The URL, its password replaced by `***`.
        url: String,
        /// How many times stowage tried.
        attempts: u32,
        /// How long it tried.
        waited: Duration,
        /// The last error, without the password.
        reason: String,
    },

    /// The database URL cannot be used.
    #[error(
        "the database URL {url} is not valid: {reason}; it should look like \
         postgres://user:password@host:5432/db, mysql://user:password@host:3306/db or sqlite://file.db"
    )]
    InvalidUrl {
        /// The URL, its password replaced by `***`.
        url: String,
        /// What is wrong with it, without the password.
        reason: String,
    },

    /// A database operation failed.
    #[error("{context}: {source}")]
    Database {
        /// What stowage was doing.
        context: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// Another process held the migration lock for longer than the timeout.
    #[error(
        "timed out after {waited:?} waiting for the migration lock{}; another process is migrating \
         this database: let it finish, or raise the lock timeout (`Migrator::with_lock_timeout`)",
        holder.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default()
    )]
    LockTimeout {
        /// How long stowage waited.
        waited: Duration,
        /// Who held the lock, when the database says.
        holder: Option<String>,
    },

    /// An applied migration's checksum differs from the binary's.
    #[error(
        "migration {version} ({source_path}) was applied with checksum {applied} but the binary has \
         {embedded}: restore the file as it was, or run `repair` to accept the new content"
    )]
    ChecksumMismatch {
        /// The version.
        version: i64,
        /// The migration's file, relative to the migrations folder.
        source_path: String,
        /// Hex checksum recorded in the database (first 8 bytes).
        applied: String,
        /// Hex checksum of the embedded migration (first 8 bytes).
        embedded: String,
    },

    /// The database has applied a version the binary does not have.
    #[error(
        "migration {version} ({description}) is applied in the database but this binary does not \
         have it (an older binary, or a deleted file?): deploy the binary that has it, or undo it \
         with that binary first"
    )]
    UnknownVersion {
        /// The version.
        version: i64,
        /// Its description, as recorded.
        description: String,
    },

    /// A pending migration is older than the newest applied one.
    #[error(
        "migration {version} ({source_path}) is pending but older than the newest applied \
         migration {newest_applied}: give it a version after {newest_applied}, or allow \
         out-of-order migrations (`Migrator::with_out_of_order`)"
    )]
    OutOfOrder {
        /// The pending version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
        /// The newest applied version.
        newest_applied: i64,
    },

    /// An earlier run stopped in the middle of a migration that runs
    /// statement by statement, and left a `failed` row.
    #[error(
        "migration {version} ({description}) failed in an earlier run{}{}: the database may hold \
         part of it; fix the database by hand, then run `repair --clear-failed {version}`",
        statement.map(|s| format!(" after statement {s}")).unwrap_or_default(),
        error.as_ref().map(|e| format!(" with: {e}")).unwrap_or_default()
    )]
    FailedMigration {
        /// The version.
        version: i64,
        /// Its description.
        description: String,
        /// How many statements had completed.
        statement: Option<i64>,
        /// The database error it hit, when it was recorded.
        error: Option<String>,
    },

    /// A migration failed while being applied.
    #[error(
        "migration {version} ({source_path}) failed{}: {source}; {}",
        statement.map(|s| format!(" at statement {}", s + 1)).unwrap_or_default(),
        if *transactional {
            "it was rolled back, nothing of it was applied; fix the SQL and run again"
        } else {
            "it ran outside a transaction, so the statements before it stay applied and its history \
             row is marked failed; fix the database by hand, then run `repair --clear-failed`"
        }
    )]
    MigrationFailed {
        /// The version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
        /// The index (from 0) of the statement that failed, for migrations
        /// run statement by statement.
        statement: Option<i64>,
        /// Whether the migration ran in a transaction (and so left nothing behind).
        transactional: bool,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
}

impl Error {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let context = context.into();
        move |source| Error::Database { context, source }
    }
}

/// The first 8 bytes of a checksum, in hex.
pub(crate) fn short_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().take(8).fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
