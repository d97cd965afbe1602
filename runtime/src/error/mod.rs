//! [`Error`]: everything that can go wrong, with what to do about it.

use std::time::Duration;

mod making;
mod server;
#[cfg(driver)]
pub(crate) use making::{Spot, excerpt};
pub(crate) use server::{
    connect_advice, read_only_reason, server_message, with_transaction_advice,
};
#[cfg(driver)]
pub(crate) use server::{
    has_code, is_connection_lost, is_deadlock, is_denied, is_rolled_back, is_transient,
};

/// The error of every fallible stowage operation.
///
/// Messages name the migration (version and file) and say what to do next.
/// No message ever holds a password. `Debug` prints the same message, so
/// that `main` (or a test) returning `Result<_, stowage::Error>` shows the
/// advice rather than the enum's fields; match on the variant for those.
///
/// ```no_run
/// # async fn start(pool: sqlx::PgPool) -> Result<(), stowage::Error> {
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
///
/// match MIGRATOR.run(&pool).await {
///     Ok(report) => println!("{report}"),
///     // Another replica is migrating: serve once it is done.
///     Err(stowage::Error::LockTimeout { holder, .. }) => {
///         eprintln!("still migrating elsewhere ({holder:?}); starting anyway");
///     }
///     // Anything else: the message says what to do.
///     Err(error) => return Err(error),
/// }
/// # Ok(()) }
/// ```
#[derive(thiserror::Error)]
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
        "migration {version} ({source_path}) has no down SQL, so it cannot be undone (`down` \
         refuses before running anything). Add a `.down.sql` (or diesel `down.sql`), or undo \
         fewer migrations"
    )]
    Irreversible {
        /// The version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
    },

    /// Reverting a migration failed.
    #[error(
        "undoing migration {version} ({source_path}) failed{}: {}; its history \
         row was kept. \
         Fix the down SQL or the database, then undo again",
        match (line, excerpt, statement) {
            (Some(line), Some(excerpt), _) => format!(" at line {line} (`{excerpt}`)"),
            (Some(line), None, _) => format!(" at line {line}"),
            (None, _, Some(s)) => format!(" at statement {}", s + 1),
            (None, _, None) => String::new(),
        },
        server_message(source)
    )]
    UndoFailed {
        /// The version.
        version: i64,
        /// The file of its down SQL, relative to the migrations folder.
        source_path: String,
        /// The index (from 0) of the failing statement, when known.
        statement: Option<i64>,
        /// The line (from 1) of the down file where it failed, when the
        /// server says or the failing statement is known.
        line: Option<usize>,
        /// The beginning of the failing statement, as written in the file.
        excerpt: Option<String>,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },

    /// A recorded chain value does not match the binary's, although the
    /// checksum does: migrations were inserted before it or reordered.
    #[error(
        "migration {version} ({source_path}) was applied after other migrations than this binary \
         has before it (one was added before it, or removed): fix the problems listed with it \
         first (a migration added is pending out of order, one removed is missing from the \
         binary); then, if the history is right, `repair --accept-checksums` records this \
         binary's list"
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
        "cannot connect to {url} ({attempts} attempt{} over {waited:.1?}): {reason}; {}",
        if *attempts == 1 { "" } else { "s" },
        connect_advice(url, reason)
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

    /// The connection's backend is not one stowage supports (an
    /// `AnyConnection` of another driver), or this build lacks its support.
    #[error(
        "the database backend `{0}` is not supported: stowage applies migrations to PostgreSQL, \
         MySQL/MariaDB and SQLite; connect to one of those"
    )]
    UnsupportedBackend(String),

    /// The URL names a database this build has no driver for: a feature
    /// of stowage (and so of sqlx) was left out.
    #[error(
        "this binary cannot open {scheme}: URLs: it was built without stowage's `{feature}` \
         feature, which brings sqlx's driver for it; enable it in Cargo.toml: \
         stowage-migrate = {{ features = [\"{feature}\", …] }}"
    )]
    MissingFeature {
        /// The URL's scheme.
        scheme: String,
        /// The feature that would open it.
        feature: &'static str,
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
    #[error("{context}: {}", server_message(source))]
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
         {embedded}: restore the file as it was, or accept the new content with \
         `repair --accept-checksums`"
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
         have it (an older binary, or a deleted file?): {}",
        match undo_to {
            Some(to) => format!(
                "undo it with this binary (`down --to {to} --yes`, from the down SQL the history \
                 keeps), or deploy the binary that has it"
            ),
            None => "deploy the binary that has it, or undo it with that binary first (its \
                     history row keeps no down SQL)"
                .to_owned(),
        }
    )]
    UnknownVersion {
        /// The version.
        version: i64,
        /// Its description, as recorded.
        description: String,
        /// The version `down --to` can go back to with this binary, when
        /// every migration above it that the binary lacks has its down SQL
        /// kept in the history.
        undo_to: Option<i64>,
    },

    /// The down SQL that a history row keeps no longer matches the checksum
    /// recorded with it.
    #[error(
        "the down SQL the history keeps for migration {version} ({description}) does not match \
         the checksum recorded with it (changed in the database?), so it is not run: undo the \
         migration with the binary that has it"
    )]
    StoredDownModified {
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
    /// outside a transaction (or on MySQL, whose DDL commits by itself), and
    /// left a `failed` row.
    #[error(
        "migration {version} ({description}) failed in an earlier run{}: the database may hold \
         part of it; fix the database by hand, then run `repair --clear-failed {version}`",
        match (statement, error) {
            (Some(s), Some(e)) => format!(" after statement {s}, with: {e}"),
            (None, Some(e)) => format!(", with: {e}"),
            // No error recorded: the process or its connection ended.
            (Some(0), None) => " without finishing (its process ended): statement 1 may be \
                                applied, none after it"
                .to_owned(),
            (Some(s), None) => format!(
                " without finishing (its process ended): statements 1 to {s} are applied, \
                 statement {} may be, none after it",
                s + 1
            ),
            (None, None) => String::new(),
        }
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

    /// A migration left rows that violate foreign keys (SQLite, which runs
    /// migrations with enforcement off and checks before each commit).
    #[error(
        "migration {version} ({source_path}) leaves rows that violate foreign keys: {}; it was \
         rolled back, nothing of it was applied. Fix the SQL so that every row has its parent, \
         and run again",
        violations.join(", ")
    )]
    ForeignKeyViolation {
        /// The version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
        /// The first violations, each naming the table, rowid and parent table.
        violations: Vec<String>,
    },

    /// Another tool's history cannot be taken over as it is; nothing was
    /// changed.
    #[error(
        "cannot take over the history of {tool} (table {table}): {problem}; nothing was changed"
    )]
    TakeOver {
        /// The tool: `sqlx`, `diesel` or `refinery`.
        tool: String,
        /// Its history table.
        table: String,
        /// What does not match, and what to do.
        problem: String,
    },

    /// A migration holds a statement stowage cannot run; nothing was run.
    #[error(
        "migration {version} ({source_path}) cannot be run by stowage: line {line} (`{excerpt}`) \
         {reason}; nothing was applied"
    )]
    UnsupportedStatement {
        /// The version.
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
        /// The statement's line in the file, from 1.
        line: usize,
        /// The beginning of the statement.
        excerpt: String,
        /// Why, and what to write instead.
        reason: String,
    },

    /// The database does not take writes: a standby, a replica, or a
    /// read-only session. Found before the lock is taken.
    #[error(
        "the database cannot apply migrations: {reason}; run the migrations against the primary, \
         writable server (reading, as `status` and an up-to-date `run` do, works here); nothing \
         was changed"
    )]
    ReadOnly {
        /// Why it does not take writes.
        reason: String,
    },

    /// The database holds tables or views of its own and no stowage
    /// history: it was built some other way. Found before anything ran.
    #[error(
        "the database holds {} table{} or view{} of its own ({}) and no stowage history: it was not \
         built by these migrations, so `up` would fail on the first of them or add to a schema it \
         does not know; nothing was changed. {}",
        objects.len(), plural(objects.len()), plural(objects.len()), listed(objects), existing_advice(*matching)
    )]
    ExistingSchema {
        /// The tables and views, by name.
        objects: Vec<String>,
        /// The version whose schema the database's is, when it was looked
        /// for and found (`migrate up` looks).
        matching: Option<i64>,
    },

    /// `baseline`: the database's schema is not the one the migrations
    /// build at any version.
    #[error(
        "the database's schema is not the one the migrations build at any version{}; nothing was \
         recorded:\n{}",
        closest.map_or_else(String::new, |v| format!(" (the closest is version {v}, from which it differs as below)")),
        differences.join("\n")
    )]
    NoMatchingVersion {
        /// The version with the fewest differences.
        closest: Option<i64>,
        /// How the database differs from it.
        differences: Vec<String>,
    },

    /// A schema file kept beside the migrations is not the schema they
    /// build (`testing::check_schema_file`, feature `testing`).
    #[error("the schema file {path} {problem}")]
    SchemaFile {
        /// The file.
        path: String,
        /// What is wrong with it, and what to do.
        problem: String,
    },

    /// A placeholder used by a migration or callback has no value; found
    /// before anything ran.
    #[error(
        "{source_path} uses the placeholder `${{{name}}}` (line {line}), which has no value; give it \
         one with `Migrator::with_placeholders` or `Migrator::placeholder`, or set {env_var} \
         (write `$${{` for a literal `${{`); nothing was applied"
    )]
    PlaceholderUnset {
        /// The migration or callback file, relative to the migrations folder.
        source_path: String,
        /// The placeholder's name.
        name: String,
        /// The line of its first use, from 1.
        line: usize,
        /// The environment variable that would give it a value.
        env_var: String,
    },

    /// A callback file or Rust hook failed; the run stopped there.
    #[error(
        "the {event} callback {callback} failed{}: {message}; the run stopped there: migrations \
         applied before it stay applied and recorded, none after it ran. {}",
        version.map(|v| format!(" (for migration {v})")).unwrap_or_default(),
        match event {
            crate::Event::BeforeMigrate | crate::Event::BeforeEachMigrate =>
                "Fix the callback and run again",
            _ => "Callbacks run only while migrations are pending, so a later run does not run \
                  this one again for the migrations already applied: fix it, and do by hand once \
                  what it was to do",
        }
    )]
    CallbackFailed {
        /// The event it ran at.
        event: crate::Event,
        /// The callback file's path, or `a Rust hook`.
        callback: String,
        /// For the events of each migration, the migration's version.
        version: Option<i64>,
        /// The error, in its own words.
        message: String,
        /// The error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A migration failed while being applied.
    #[error(
        "{} ({source_path}) failed{}: {message}; {}",
        if *version < 0 { "repeatable migration".to_owned() } else { format!("migration {version}") },
        match (line, excerpt, statement) {
            (Some(line), Some(excerpt), _) => format!(" at line {line} (`{excerpt}`)"),
            (Some(line), None, _) => format!(" at line {line}"),
            (None, _, Some(s)) => format!(" at statement {}", s + 1),
            (None, _, None) => String::new(),
        },
        if *transactional {
            "it was rolled back, nothing of it was applied; fix the SQL and run again".to_owned()
        } else if *version < 0 {
            "it ran outside a transaction, so the statements before it stay applied; fix the SQL: \
             a repeatable migration is applied again whole by the next run".to_owned()
        } else {
            format!(
                "it ran outside a transaction, so the statements before it stay applied and its \
                 history row is marked failed; fix the database by hand, then run \
                 `repair --clear-failed {version}`"
            )
        }
    )]
    MigrationFailed {
        /// The version (for a repeatable migration, its negative key).
        version: i64,
        /// Its file, relative to the migrations folder.
        source_path: String,
        /// The index (from 0) of the statement that failed, when known.
        statement: Option<i64>,
        /// The line (from 1) of the migration's file where it failed, when
        /// the server says or the failing statement is known.
        line: Option<usize>,
        /// The beginning of the failing statement, as written in the file.
        excerpt: Option<String>,
        /// The server's message, in its own words.
        message: String,
        /// Whether the migration ran in a transaction (and so left nothing behind).
        transactional: bool,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
}

/// The first 8 bytes of a checksum, in hex.
pub(crate) fn short_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().take(8).fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The first few of `names`, and how many more.
fn listed(names: &[String]) -> String {
    let shown = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    match names.len() {
        0..=5 => shown,
        n => format!("{shown} and {} more", n - 5),
    }
}

fn existing_advice(matching: Option<i64>) -> String {
    match matching {
        Some(version) => format!(
            "Its schema is the one the migrations build at version {version}: record that with \
             `stamp {version}`, then run again"
        ),
        None => "If its schema is one of this binary's versions, `baseline` finds which and \
                 records it; to apply the migrations beside these tables anyway, use \
                 `Migrator::with_existing_schema(Policy::Allow)`"
            .to_owned(),
    }
}
