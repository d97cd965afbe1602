//! The command line's words: the clap types of `migrate` and its subcommands.

/// The heading of the options every subcommand takes.
const GLOBAL: &str = "Global options";

/// `migrate`: inspect and change the database's migrations with the ones
/// embedded in this binary.
///
/// Nested in an application's clap parser, run from an async `main`:
///
/// ```no_run
/// use clap::Parser;
///
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
///
/// #[derive(clap::Parser)]
/// enum Cli {
///     /// Inspect and change the database's migrations.
///     Migrate(stowage::cli::MigrateCommand),
/// }
///
/// # async fn main_() {
/// let Cli::Migrate(migrate) = Cli::parse();
/// std::process::exit(migrate.run(&MIGRATOR).await);
/// # }
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateCommand {
    /// The database, e.g. postgres://user:password@host/db, mysql://…, sqlite://file.db;
    /// without it, DATABASE_URL, or the file DATABASE_URL_FILE names.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true, help_heading = GLOBAL)]
    pub database_url: Option<String>,
    /// How long to wait for the database to come up, in seconds [default:
    /// 60; `check`: 0, one attempt, for a readiness probe].
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub connect_timeout: Option<u64>,
    /// Say nothing but results and errors (no progress lines).
    #[arg(long, short, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,
    /// Also say which file each migration comes from and where the
    /// database is.
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    pub verbose: bool,
    /// Print one JSON object on stdout instead of text: the status after
    /// the command (schema 1, as `status` gives it) with `command`,
    /// `exit_code`, `message`, `error` and the command's own fields.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Where `drift` and `baseline` build the migrations' schema.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct DevServer {
    /// Build the migrations' schema in a scratch database on this server
    /// (a user that may create databases, of the same version as the
    /// database's) instead of the database's own.
    #[arg(
        long,
        value_name = "URL",
        env = "STOWAGE_DEV_URL",
        hide_env_values = true
    )]
    pub dev_url: Option<String>,
}

/// A `migrate` subcommand.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum Action {
    /// Apply pending migrations (all, or up to a version).
    Up {
        /// Stop after this version.
        #[arg(long)]
        to: Option<i64>,
    },
    /// Revert applied migrations, newest first (one by default).
    Down {
        /// How many to revert.
        #[arg(long, conflicts_with_all = ["to", "base"])]
        steps: Option<u32>,
        /// Revert everything above this version.
        #[arg(long, conflicts_with = "base")]
        to: Option<i64>,
        /// Revert everything.
        #[arg(long)]
        base: bool,
        /// Really do it (without it, `down` prints the plan and changes nothing).
        #[arg(long)]
        yes: bool,
    },
    /// Show every migration and its state.
    Status,
    /// Record migrations as applied without running them (`head`, `base` or a version).
    Stamp {
        /// `head`, `base`, or a version.
        target: String,
        /// Also when it removes history rows (a target below the database's
        /// version); without it, such a stamp says what it would remove and
        /// changes nothing.
        #[arg(long)]
        yes: bool,
    },
    /// Check the history against the binary, read-only; exit 3 on problems.
    Verify,
    /// Exit 0 when the database is at this binary's head with nothing failed,
    /// modified or missing; 4 pending, 5 failed, 6 modified, 7 missing, 8
    /// pending out of order, 9 unreachable (one attempt to connect).
    Check,
    /// Wait until the database is at this binary's head (another process
    /// migrates it); then exit 0, or as `check` does when the wait ends
    /// without it (a missing database is waited for too).
    Wait {
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Print the SQL that `up` (or `down`) would run; runs nothing.
    Plan {
        /// Plan up (or down) to this version.
        #[arg(long, conflicts_with = "down")]
        to: Option<i64>,
        /// Plan reverting this many migrations.
        #[arg(long)]
        down: Option<u32>,
    },
    /// Take over the history sqlx, diesel or refinery kept in this database
    /// (`up` does it by itself when it finds exactly one); runs no migration.
    Adopt {
        /// The tool: sqlx, diesel or refinery.
        #[arg(long)]
        from: crate::Tool,
    },
    /// Print a migration's SQL, up and down, as embedded in this binary
    /// (for each database it has a file for); needs no database.
    Show {
        /// The version.
        version: i64,
    },
    /// Write the next migration file into the migrations folder this binary
    /// was built from (a debug build in its checkout), in that folder's own
    /// layout and numbering, in each dialect folder; needs no database.
    New {
        /// What the migration does, e.g. `add users` (becomes `add_users`);
        /// several words need no quotes.
        #[arg(required = true, num_args = 1..)]
        name: Vec<String>,
        /// Also write the file that reverts it (implied where the newest
        /// migration has one).
        #[arg(long)]
        reversible: bool,
        /// Write the migration that turns the schema this binary's
        /// migrations build (at its head) into the database's: URL's, a
        /// development database changed by hand, or without URL the
        /// command's own (`--database-url`, DATABASE_URL), and the down
        /// that turns it back. For a database made without migrations,
        /// before the first: its whole schema, as `dump` prints it
        /// (`baseline` then records it), in its dialect's folder.
        #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "",
              value_parser = database_hint)]
        from_database: Option<String>,
        /// Write the migration that turns the schema this binary's
        /// migrations build (at its head) into the one FILE makes (as `dump`
        /// writes it, or any SQL the server takes), and the down that turns
        /// it back; both are built in scratch databases on the database's
        /// server (or `--dev-url`). Steps that can lose data are listed.
        #[arg(long, value_name = "FILE", conflicts_with = "from_database")]
        from_schema: Option<std::path::PathBuf>,
        /// With `--from-schema` or `--from-database`: a rename, which a
        /// drop and an add cannot be told from: `old_table=new_name` or
        /// `table.old_column=new_name` (repeatable).
        #[arg(long, value_name = "OLD=NEW")]
        rename: Vec<String>,
        /// Where to build them.
        #[command(flatten)]
        dev: DevServer,
    },
    /// Print the database's schema as one SQL script that recreates it in
    /// an empty database (read from its catalogue; stowage's own tables
    /// left out); with `--json`, its objects.
    Dump {
        /// Print the schema this binary's migrations build instead, in a
        /// scratch database (at the head, or at `--to`).
        #[arg(long)]
        expected: bool,
        /// With `--expected`: at this version.
        #[arg(long, requires = "expected")]
        to: Option<i64>,
        /// Where to build it.
        #[command(flatten)]
        dev: DevServer,
    },
    /// Compare the database's schema with the one this binary's migrations
    /// build at the database's version (the embedded schema snapshot's when
    /// it holds that version on this server's major; otherwise built in a
    /// scratch database: a temporary file for SQLite, a new database on the
    /// server otherwise); exit 10 when they differ. Read-only.
    Drift {
        /// Where to build the migrations' schema.
        #[command(flatten)]
        dev: DevServer,
    },
    /// For a database built without these migrations (tables, no
    /// history): find the version whose schema it has, by building each in
    /// a scratch database, and stamp it; refuses, with the differences
    /// from the closest version, when none matches.
    Baseline {
        /// Where to build the migrations' schema.
        #[command(flatten)]
        dev: DevServer,
    },
    /// Fix the history table explicitly.
    Repair {
        /// Accept the binary's checksums for migrations whose files changed.
        #[arg(
            long,
            conflicts_with = "clear_failed",
            required_unless_present = "clear_failed"
        )]
        accept_checksums: bool,
        /// Delete the failed row of this version, after fixing the database by hand.
        #[arg(long, value_name = "VERSION")]
        clear_failed: Option<i64>,
    },
}

impl Action {
    /// The subcommand's name, as typed.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Action::Up { .. } => "up",
            Action::Down { .. } => "down",
            Action::Status => "status",
            Action::Stamp { .. } => "stamp",
            Action::Verify => "verify",
            Action::Check => "check",
            Action::Wait { .. } => "wait",
            Action::Plan { .. } => "plan",
            Action::Adopt { .. } => "adopt",
            Action::Show { .. } => "show",
            Action::Dump { .. } => "dump",
            Action::Drift { .. } => "drift",
            Action::Baseline { .. } => "baseline",
            Action::Repair { .. } => "repair",
            Action::New { .. } => "new",
        }
    }
}

/// `--from-database`'s URL, or nothing: the migration's name given after
/// it is refused, not taken for a URL.
fn database_hint(value: &str) -> Result<String, String> {
    match value.is_empty() || value.contains(':') {
        true => Ok(value.to_owned()),
        false => Err(format!(
            "`{value}` is not a database URL (postgres://…, mysql://…, sqlite:…); the \
             migration's name goes before --from-database"
        )),
    }
}
