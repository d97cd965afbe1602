//! The `migrate` subcommands, for the application's own binary (feature `cli`).
//!
//! Nest [`MigrateCommand`] in the application's clap parser:
//!
//! ```no_run
//! use clap::Parser;
//!
//! static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
//!
//! #[derive(clap::Parser)]
//! enum Cli {
//!     /// Serve requests.
//!     Serve,
//!     /// Inspect and change the database's migrations.
//!     Migrate(stowage::cli::MigrateCommand),
//! }
//!
//! match Cli::parse() {
//!     Cli::Serve => { /* … */ }
//!     Cli::Migrate(command) => std::process::exit(command.run_blocking(&MIGRATOR)),
//! }
//! ```
//!
//! or, without clap, hand over the process: `stowage::cli::main(&MIGRATOR)`
//! reads `[migrate] <subcommand> …` from the command line.
//!
//! `up` and `stamp` create the database when it does not exist; the other
//! subcommands fail on a missing database instead of leaving an empty one
//! behind (a mistyped name, say).
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | error: the database refused, a policy stopped the run, a migration failed |
//! | 2 | usage: bad arguments, or `down` without `--yes` |
//! | 3 | `verify` found problems |
//! | 4 | `check`: migrations are pending (or repeatable ones outdated) |
//! | 5 | `check`: a migration failed part-way |
//! | 6 | `check`: an applied migration's file changed |
//! | 7 | `check`: the database has a migration this binary does not |
//! | 8 | `check`: a pending migration is older than the newest applied one (`up` refuses it) |
//! | 9 | `check`: the database cannot be reached |
//!
//! `check` gives the most serious of 5, 6, 7, 8, 4 that applies: for a CI
//! step ("everything applied") or a readiness probe. It tries to connect
//! once (`--connect-timeout` to wait) and exits 9 when the server cannot be
//! reached, 4 when the database does not exist yet. `wait` is the command
//! that waits: it exits as `check` does once the database is at the head
//! (0), in a state waiting cannot change (5, 6, 7, 8), or at its timeout (4).

use crate::{ConnectOptions, Error, Migrator, RepairAction, Target};
use std::time::Duration;

/// Success.
pub const EXIT_OK: i32 = 0;
/// An error; the message is on stderr.
pub const EXIT_ERROR: i32 = 1;
/// Bad usage.
pub const EXIT_USAGE: i32 = 2;
/// `verify` found problems.
pub const EXIT_PROBLEMS: i32 = 3;
/// `check`: migrations are pending.
pub const EXIT_PENDING: i32 = 4;
/// `check`: a migration failed part-way.
pub const EXIT_FAILED: i32 = 5;
/// `check`: an applied migration's file changed.
pub const EXIT_MODIFIED: i32 = 6;
/// `check`: the database has a migration the binary does not.
pub const EXIT_MISSING: i32 = 7;
/// `check`: a pending migration is older than the newest applied one, which
/// `up` refuses (unless the migrator allows it out of order).
pub const EXIT_OUT_OF_ORDER: i32 = 8;
/// `check`: the database cannot be reached (it is not waited for:
/// `--connect-timeout` is 0 unless given).
pub const EXIT_UNREACHABLE: i32 = 9;

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

impl MigrateCommand {
    /// Run the command on a Tokio runtime of its own; the exit code. For a
    /// `main` that is not async; inside an async one, prefer
    /// [`run`](Self::run)`.await`. Called on a thread that is already in a
    /// runtime (where starting another one panics), it runs the command on
    /// a thread of its own and waits for it.
    ///
    /// ```no_run
    /// use clap::Parser;
    ///
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    ///
    /// #[derive(clap::Parser)]
    /// struct Cli {
    ///     #[command(subcommand)]
    ///     command: Command,
    /// }
    ///
    /// #[derive(clap::Subcommand)]
    /// enum Command {
    ///     Migrate(stowage::cli::MigrateCommand),
    /// }
    ///
    /// fn main() {
    ///     let Command::Migrate(migrate) = Cli::parse().command;
    ///     std::process::exit(migrate.run_blocking(&MIGRATOR));
    /// }
    /// ```
    pub fn run_blocking(&self, migrator: &Migrator) -> i32 {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                let thread = std::thread::Builder::new()
                    .name("stowage-migrate".to_owned())
                    .spawn_scoped(scope, || self.run_on_own_runtime(migrator));
                match thread.map(|thread| thread.join()) {
                    Ok(Ok(code)) => code,
                    Ok(Err(_)) => {
                        eprintln!("error: the migrate command's thread panicked");
                        EXIT_ERROR
                    }
                    Err(error) => {
                        eprintln!("error: cannot start a thread for the migrate command: {error}");
                        EXIT_ERROR
                    }
                }
            });
        }
        self.run_on_own_runtime(migrator)
    }

    fn run_on_own_runtime(&self, migrator: &Migrator) -> i32 {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(self.run(migrator)),
            Err(error) => {
                eprintln!("error: cannot start the async runtime: {error}");
                EXIT_ERROR
            }
        }
    }

    /// Run the command; the exit code. Output goes to stdout (one JSON
    /// object with `--json`), errors and progress to stderr.
    pub async fn run(&self, migrator: &Migrator) -> i32 {
        let (outcome, status) = match self.execute(migrator).await {
            Ok(done) => done,
            Err((error, status)) => {
                eprintln!("error: {error}");
                let code = match (&self.action, &error) {
                    (Action::Check, Error::Connect { reason, .. })
                        if reason.contains(crate::connect::NO_DATABASE) =>
                    {
                        EXIT_PENDING
                    }
                    (Action::Check, Error::Connect { .. }) => EXIT_UNREACHABLE,
                    _ => EXIT_ERROR,
                };
                (Outcome::failed(code, error.to_string()), status)
            }
        };
        let (code, after) = (outcome.code, outcome.after.clone());
        if self.json {
            match outcome.into_json(self.action.name(), status) {
                Ok(text) => say_out(&text),
                Err(error) => {
                    eprintln!("error: cannot write JSON: {error}");
                    return EXIT_ERROR;
                }
            }
        } else if !outcome.said.is_empty() {
            say_out(&outcome.said);
        }
        if let Some(note) = after {
            eprintln!("{note}");
        }
        code
    }

    /// The command's outcome, and for `--json` the status after it.
    /// A failure comes with the status after it, for `--json`, where the
    /// database could still be read.
    async fn execute(
        &self,
        migrator: &Migrator,
    ) -> Result<(Outcome, Option<crate::Status>), (Error, Option<crate::Status>)> {
        let unread = |error| (error, None);
        match &self.action {
            Action::Show { version } => return Ok((show(migrator, *version), None)),
            Action::New { name, reversible } => {
                return Ok((new(migrator, &name.join(" "), *reversible), None));
            }
            _ => {}
        }
        let from_env = match self.database_url {
            Some(_) => None,
            None => crate::database_url().map_err(unread)?,
        };
        let Some(url) = self
            .database_url
            .as_deref()
            .or(from_env.as_deref())
            .filter(|url| !url.trim().is_empty())
        else {
            return Ok((
                Outcome::usage(
                    "no database: set DATABASE_URL (or DATABASE_URL_FILE, a file holding it) \
                     or pass --database-url",
                ),
                None,
            ));
        };
        let target = match &self.action {
            Action::Stamp { target, .. } => match parse_target(target) {
                Some(target) => Some(target),
                None => {
                    return Ok((
                        Outcome::usage(format!(
                            "stamp takes `head`, `base` or a version number, not `{target}`"
                        )),
                        None,
                    ));
                }
            },
            _ => None,
        };
        // Only the commands that write a history create a missing database:
        // a mistyped name given to `status` must not leave an empty one behind.
        // (`adopt` reads the other tool's table: its database must exist.)
        let creates = matches!(self.action, Action::Up { .. } | Action::Stamp { .. });
        let started = std::time::Instant::now();
        let connect_timeout = self.connect_timeout.unwrap_or(match self.action {
            Action::Check => 0,
            _ => 60,
        });
        let options = ConnectOptions::default()
            .timeout(Duration::from_secs(connect_timeout))
            .create_database(creates)
            .say_waiting(!self.quiet)
            .log_statements(false);
        let pool: sqlx::AnyPool = match &self.action {
            Action::Wait { timeout } => {
                let deadline = started + Duration::from_secs(*timeout);
                match wait_for_database(url, options, deadline, self.quiet)
                    .await
                    .map_err(unread)?
                {
                    Some(pool) => pool,
                    None => {
                        let said = "not ready: the database does not exist; gave up waiting";
                        return Ok((Outcome::new(EXIT_PENDING, said), None));
                    }
                }
            }
            _ => crate::connect_with(url, options).await.map_err(unread)?,
        };
        if self.verbose {
            eprintln!("connected to {}", crate::connect::redact(url));
        }
        let progress = Progress::new(self.quiet, self.verbose);
        let migrator = &progress.attach(migrator.clone());
        let (outcome, status) = match self.act(migrator, &pool, target, started).await {
            Ok((outcome, status)) => (outcome, status),
            Err(error) => {
                progress.stop();
                let status = match self.json {
                    true => migrator.status(&pool).await.ok(),
                    false => None,
                };
                pool.close().await;
                return Err((error, status));
            }
        };
        progress.stop();
        // The state after the command, for `--json`, where the command did
        // not read it itself.
        let status = match (status, self.json) {
            (Some(status), _) => Some(status),
            (None, true) => migrator.status(&pool).await.ok(),
            (None, false) => None,
        };
        pool.close().await;
        Ok((outcome, status))
    }

    /// What each subcommand does once connected.
    async fn act(
        &self,
        migrator: &Migrator,
        pool: &sqlx::AnyPool,
        target: Option<Target>,
        started: std::time::Instant,
    ) -> Result<(Outcome, Option<crate::Status>), Error> {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let outcome = match &self.action {
            Action::Up { to } => {
                let report = match to {
                    Some(version) => migrator.run_to(pool, *version).await,
                    None => migrator.run(pool).await,
                }?;
                Outcome::new(EXIT_OK, report.to_string()).with("applied", listed(report.applied()))
            }
            Action::Down {
                steps,
                to,
                base,
                yes,
            } => {
                let target = match (steps, to, base) {
                    (_, _, true) => Target::Base,
                    (_, Some(version), _) => Target::Version(*version),
                    (Some(steps), _, _) => Target::Steps(*steps),
                    _ => Target::Steps(1),
                };
                if *yes {
                    let report = migrator.undo(pool, target).await?;
                    Outcome::new(EXIT_OK, report.to_string())
                        .with("reverted", listed(report.reverted()))
                } else {
                    let plan = migrator.plan(pool, target).await?;
                    let n = plan.steps.len();
                    let refused = format!(
                        "nothing changed: `down` reverts {n} migration{} as above; run it again \
                         with --yes",
                        plural(n)
                    );
                    Outcome::new(EXIT_USAGE, plan.to_string())
                        .then_say(refused.clone())
                        .with("error", refused)
                        .with("plan", planned(&plan))
                }
            }
            Action::Status => {
                let status = migrator.status(pool).await?;
                return Ok((Outcome::new(EXIT_OK, status.to_string()), Some(status)));
            }
            Action::Stamp { yes, .. } => {
                let target = target.unwrap_or(Target::Head);
                let above = match target {
                    Target::Version(v) => Some(v),
                    Target::Base => Some(0),
                    _ => None,
                };
                let status = match (above, yes) {
                    (Some(_), false) => Some(migrator.status(pool).await?),
                    _ => None,
                };
                let removed: Vec<i64> = status
                    .iter()
                    .flat_map(|status| &status.migrations)
                    .filter(|m| !m.repeatable && above.is_some_and(|above| m.version > above))
                    .filter(|m| m.state != crate::MigrationState::Pending)
                    .map(|m| m.version)
                    .collect();
                if !removed.is_empty() {
                    let refused = format!(
                        "nothing changed: this stamp removes the history rows of {} migration{} \
                         ({}) without reverting their SQL; run it again with --yes",
                        removed.len(),
                        plural(removed.len()),
                        joined(&removed)
                    );
                    eprintln!("{refused}");
                    return Ok((Outcome::failed(EXIT_USAGE, refused), status));
                }
                let report = migrator.stamp(pool, target).await?;
                let at = report
                    .head()
                    .map_or_else(|| "base".to_owned(), |v| format!("version {v}"));
                let (stamped, removed) = (report.applied().len(), report.unrecorded());
                let mut said = format!(
                    "stamped {stamped} migration{} as applied without running them",
                    plural(stamped)
                );
                if !removed.is_empty() {
                    let versions: Vec<i64> = removed.iter().map(|r| r.version).collect();
                    said = format!(
                        "{said}, and removed the history rows of {} migration{} above {at} ({}) \
                         without reverting their SQL",
                        removed.len(),
                        plural(removed.len()),
                        joined(&versions)
                    );
                }
                Outcome::new(EXIT_OK, format!("{said}; now at {at}"))
                    .with("stamped", listed(report.applied()))
                    .with("removed", listed(removed))
            }
            Action::Verify => {
                let problems = migrator.verify(pool).await?;
                let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
                if problems.is_empty() {
                    Outcome::new(EXIT_OK, "ok: the history matches the binary")
                } else {
                    eprintln!("{} problem{} found", problems.len(), plural(problems.len()));
                    let said: Vec<String> = texts.iter().map(|p| format!("problem: {p}")).collect();
                    Outcome::new(EXIT_PROBLEMS, said.join("\n"))
                }
                .with("problems", texts)
            }
            Action::Check => {
                let status = migrator.status(pool).await?;
                let (code, said) = readiness(migrator, &status);
                return Ok((Outcome::new(code, said), Some(status)));
            }
            Action::Wait { timeout } => {
                let deadline = started + Duration::from_secs(*timeout);
                let (code, said, status) = wait(migrator, pool, deadline, self.quiet).await?;
                return Ok((Outcome::new(code, said), Some(status)));
            }
            Action::Plan { to, down } => {
                let target = match (to, down) {
                    (_, Some(steps)) => Target::Steps(*steps),
                    (Some(version), _) => Target::Version(*version),
                    _ => Target::Head,
                };
                let plan = migrator.plan(pool, target).await?;
                Outcome::new(EXIT_OK, plan.to_string()).with("plan", planned(&plan))
            }
            // Answered before connecting.
            Action::Show { version } => show(migrator, *version),
            Action::New { name, reversible } => new(migrator, &name.join(" "), *reversible),
            Action::Adopt { from } => {
                let report = migrator.adopt(pool, *from).await?;
                let said = format!(
                    "took over {} migration{} from {from}'s {}; now at {}",
                    report.applied().len(),
                    plural(report.applied().len()),
                    from.history_table(),
                    report
                        .head()
                        .map_or_else(|| "base".to_owned(), |v| format!("version {v}"))
                );
                Outcome::new(EXIT_OK, said).with("adopted", listed(report.applied()))
            }
            Action::Repair {
                accept_checksums,
                clear_failed,
            } => {
                let action = match (accept_checksums, clear_failed) {
                    (_, Some(version)) => RepairAction::ClearFailed(*version),
                    _ => RepairAction::AcceptChecksums,
                };
                let changed = migrator.repair(pool, action).await?;
                let said = format!("repaired: {changed} history row{} changed", plural(changed));
                Outcome::new(EXIT_OK, said).with("changed", changed)
            }
        };
        Ok((outcome, None))
    }
}

impl Action {
    /// The subcommand's name, as typed.
    fn name(&self) -> &'static str {
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
            Action::Repair { .. } => "repair",
            Action::New { .. } => "new",
        }
    }
}

/// What a subcommand did: its exit code, what it says on stdout, and the
/// fields of its own in its `--json` object.
struct Outcome {
    code: i32,
    said: String,
    /// Said on stderr after `said`, which it refers to.
    after: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Outcome {
    fn new(code: i32, said: impl Into<String>) -> Outcome {
        Outcome {
            code,
            said: said.into(),
            after: None,
            fields: serde_json::Map::new(),
        }
    }

    fn then_say(mut self, note: String) -> Outcome {
        self.after = Some(note);
        self
    }

    /// A command that did nothing: `error` says why, on stderr already.
    fn failed(code: i32, error: String) -> Outcome {
        Outcome::new(code, "").with("error", error)
    }

    /// Bad usage, said on stderr now.
    fn usage(error: impl Into<String>) -> Outcome {
        let error = error.into();
        eprintln!("error: {error}");
        Outcome::failed(EXIT_USAGE, error)
    }

    fn with(mut self, key: &str, value: impl serde::Serialize) -> Outcome {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.fields.insert(key.to_owned(), value);
        self
    }

    /// The `--json` object: the status after the command (as `status`
    /// gives it), then `command`, `exit_code`, `message`, `error` and the
    /// command's own fields.
    fn into_json(
        self,
        command: &str,
        status: Option<crate::Status>,
    ) -> Result<String, serde_json::Error> {
        use serde_json::Value;
        let mut object = match status.map(serde_json::to_value).transpose()? {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::from_iter([(
                "schema".to_owned(),
                Value::from(crate::Status::SCHEMA),
            )]),
        };
        object.insert("command".to_owned(), Value::from(command));
        object.insert("exit_code".to_owned(), Value::from(self.code));
        object.insert("message".to_owned(), Value::from(self.said));
        object.entry("error").or_insert(Value::Null);
        object.extend(self.fields);
        serde_json::to_string_pretty(&object)
    }
}

/// Migrations applied, reverted, stamped or taken over, for `--json`.
fn listed(migrations: &[crate::report::Applied]) -> Vec<serde_json::Value> {
    migrations
        .iter()
        .map(|m| {
            serde_json::json!({
                "version": m.version,
                "description": m.description,
                "duration_ms": u64::try_from(m.duration.as_millis()).unwrap_or(u64::MAX),
                "repeatable": m.repeatable,
            })
        })
        .collect()
}

/// A plan's steps, for `--json`.
fn planned(plan: &crate::Plan) -> Vec<serde_json::Value> {
    plan.steps
        .iter()
        .map(|step| {
            serde_json::json!({
                "version": step.version,
                "description": step.description,
                "direction": if plan.up { "up" } else { "down" },
                "sql": step.sql,
                "no_transaction": step.no_transaction,
            })
        })
        .collect()
}

fn joined(versions: &[i64]) -> String {
    let texts: Vec<String> = versions.iter().map(i64::to_string).collect();
    texts.join(", ")
}

/// `check`'s exit code for a status, and what it says; `migrator` says
/// whether `up` takes pending migrations older than the newest applied.
fn readiness(migrator: &Migrator, status: &crate::Status) -> (i32, String) {
    let count = |state| {
        status
            .migrations
            .iter()
            .filter(|m| m.state == state)
            .count()
    };
    use crate::MigrationState as S;
    let out_of_order = match migrator.config().on_out_of_order() {
        crate::Policy::Allow => 0,
        _ => status
            .migrations
            .iter()
            .filter(|m| m.state == S::Pending && !m.repeatable)
            .filter(|m| status.current().is_some_and(|current| m.version < current))
            .count(),
    };
    let (code, what) = [
        (EXIT_FAILED, count(S::Failed), "failed part-way"),
        (EXIT_MODIFIED, count(S::Modified), "modified since applied"),
        (
            EXIT_MISSING,
            count(S::Missing),
            "applied but not in this binary",
        ),
        (
            EXIT_OUT_OF_ORDER,
            out_of_order,
            "pending but older than the newest applied, which `up` refuses \
             (Migrator::with_out_of_order allows it)",
        ),
        (EXIT_PENDING, status.pending, "pending"),
    ]
    .into_iter()
    .find(|&(_, n, _)| n > 0)
    .map_or((EXIT_OK, String::new()), |(code, n, what)| {
        (
            code,
            format!("{n} migration{} {what}", if n == 1 { "" } else { "s" }),
        )
    });
    let at = status
        .current()
        .map_or_else(|| "base".to_owned(), |v| format!("version {v}"));
    let said = match code {
        EXIT_OK => format!(
            "ok: the {} database is at {at}, this binary's head",
            status.dialect
        ),
        _ => format!(
            "not ready: {what}; the {} database is at {at}",
            status.dialect
        ),
    };
    (code, said)
}

/// `wait`: poll the status until the database is at this binary's head
/// (exit 0), a state waiting cannot change (failed, modified, missing: its
/// `check` code), or `deadline` (4, pending); what it says, and the last
/// status read.
async fn wait(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    deadline: std::time::Instant,
    quiet: bool,
) -> Result<(i32, String, crate::Status), Error> {
    let mut last_said = String::new();
    loop {
        let status = migrator.status(pool).await?;
        let (code, said) = readiness(migrator, &status);
        if code != EXIT_PENDING {
            return Ok((code, said, status));
        }
        if std::time::Instant::now() >= deadline {
            return Ok((code, format!("{said}; gave up waiting"), status));
        }
        if !quiet && said != last_said {
            eprintln!(
                "waiting for migrations: {}",
                said.trim_start_matches("not ready: ")
            );
            last_said = said;
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

/// `wait`'s pool, once the database exists; `None` when it still does not
/// at `deadline`.
async fn wait_for_database(
    url: &str,
    options: ConnectOptions,
    deadline: std::time::Instant,
    quiet: bool,
) -> Result<Option<sqlx::AnyPool>, Error> {
    let mut said = false;
    loop {
        match crate::connect_with(url, options.clone()).await {
            Ok(pool) => return Ok(Some(pool)),
            Err(Error::Connect { reason, .. }) if reason.contains(crate::connect::NO_DATABASE) => {
                if std::time::Instant::now() >= deadline {
                    return Ok(None);
                }
                if !quiet && !said {
                    eprintln!("waiting for the database to be created");
                    said = true;
                }
                tokio::time::sleep(WAIT_POLL).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Write `text` and a line end on stdout. A reader that went away (`| head`)
/// ends the output, not the process with a panic.
fn say_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// How often `wait` reads the history.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// `new`: the files written, one path a line; notes on stderr.
fn new(migrator: &Migrator, name: &str, reversible: bool) -> Outcome {
    match crate::scaffold::new_migration(migrator, name, reversible) {
        Ok(written) => {
            for note in &written.notes {
                eprintln!("note: {note}");
            }
            let files: Vec<String> = written
                .files
                .iter()
                .map(|path| crate::scaffold::shown(path))
                .collect();
            Outcome::new(EXIT_OK, files.join("\n"))
                .with("files", files)
                .with("notes", written.notes)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Outcome::failed(EXIT_ERROR, error)
        }
    }
}

/// `show`: each embedded file of `version`, up then down.
fn show(migrator: &Migrator, version: i64) -> Outcome {
    let found: Vec<(&crate::MigrationSet, &crate::Migration)> = migrator
        .sets()
        .iter()
        .filter_map(|set| set.get(version).map(|m| (set, m)))
        .collect();
    if found.is_empty() {
        let versions: Vec<i64> = migrator
            .sets()
            .first()
            .map(|set| set.iter().map(crate::Migration::version).collect())
            .unwrap_or_default();
        let error = format!(
            "this binary has no migration {version}; its versions: {}",
            if versions.is_empty() {
                "none".to_owned()
            } else {
                joined(&versions)
            }
        );
        eprintln!("error: {error}");
        return Outcome::failed(EXIT_ERROR, error);
    }
    let mut said = Vec::new();
    let mut files = Vec::new();
    for (set, m) in found {
        let name = format!("{} {}", m.version(), m.description());
        let down = match m.down_sql() {
            Some(down) => format!("-- {name}: down\n{}", down.trim_end()),
            None => format!("-- {name}: no down SQL, `down` cannot revert it"),
        };
        said.push(format!(
            "-- {name}: up ({})\n{}\n\n{down}",
            m.source_path(),
            m.up_sql().trim_end()
        ));
        files.push(serde_json::json!({
            "version": m.version(),
            "description": m.description(),
            "dialect": set.dialect().map(|d| d.to_string()),
            "source_path": m.source_path(),
            "up": m.up_sql(),
            "down": m.down_sql(),
        }));
    }
    Outcome::new(EXIT_OK, said.join("\n\n")).with("migrations", files)
}

/// The lines `up` prints on stderr while it works: one when each migration
/// starts, one when it ends with its duration, and one every few seconds
/// while a long one runs; in colour on a terminal unless `NO_COLOR` is set.
#[derive(Clone)]
struct Progress {
    quiet: bool,
    verbose: bool,
    colour: bool,
    /// The migration running: its "still running" task, when it started,
    /// and its label.
    running: std::sync::Arc<std::sync::Mutex<Option<Running>>>,
    /// Whether waiting for the lock has been said.
    waited: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

struct Running {
    ticker: tokio::task::JoinHandle<()>,
    started: std::time::Instant,
    label: String,
}

/// How often a long migration is said to be still running.
const STILL_RUNNING: Duration = Duration::from_secs(5);

impl Progress {
    fn new(quiet: bool, verbose: bool) -> Progress {
        use std::io::IsTerminal;
        Progress {
            quiet,
            verbose,
            colour: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            running: std::sync::Arc::default(),
            waited: std::sync::Arc::default(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        match self.colour {
            true => format!("\x1b[{code}m{text}\x1b[0m"),
            false => text.to_owned(),
        }
    }

    /// The migrator with hooks that say what it does.
    fn attach(&self, migrator: Migrator) -> Migrator {
        if self.quiet {
            return migrator;
        }
        let (before, after, waiting) = (self.clone(), self.clone(), self.clone());
        migrator
            .on_lock_wait(move |holder, waited| waiting.waiting(holder, waited))
            .on(crate::Event::BeforeEachMigrate, move |ctx| {
                before.started(ctx.migration());
                Box::pin(std::future::ready(Ok(())))
            })
            .on(crate::Event::AfterEachMigrate, move |ctx| {
                after.finished(ctx.took());
                Box::pin(std::future::ready(Ok(())))
            })
    }

    fn started(&self, migration: Option<&crate::Migration>) {
        let Some(m) = migration else { return };
        let label = match m.is_repeatable() {
            true => format!("R {}", m.description()),
            false => format!("{} {}", m.version(), m.description()),
        };
        let from = match self.verbose {
            true => format!(" ({})", m.source_path()),
            false => String::new(),
        };
        eprintln!("{} {label}{from}", self.paint("1", "applying"));
        let started = std::time::Instant::now();
        let still = format!("  still applying {label}");
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(STILL_RUNNING).await;
                eprintln!("{still} ({} s)", started.elapsed().as_secs());
            }
        });
        if let Ok(mut slot) = self.running.lock()
            && let Some(old) = slot.replace(Running {
                ticker,
                started,
                label,
            })
        {
            old.ticker.abort();
        }
    }

    fn waiting(&self, holder: Option<&str>, waited: Duration) {
        let holder = holder.map(|h| format!(", held by {h}")).unwrap_or_default();
        match self.waited.swap(true, std::sync::atomic::Ordering::Relaxed) {
            false => eprintln!(
                "{} for the migration lock{holder}",
                self.paint("33", "waiting")
            ),
            true => eprintln!(
                "  still waiting for the migration lock ({} s){holder}",
                waited.as_secs()
            ),
        }
    }

    /// A migration is applied: said with the time the report gives it
    /// (`took`), not counting the callbacks around it.
    fn finished(&self, took: Option<Duration>) {
        let Some(done) = self.running.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        done.ticker.abort();
        eprintln!(
            "{} {} in {:.1?}",
            self.paint("32", "applied"),
            done.label,
            took.unwrap_or_else(|| done.started.elapsed())
        );
    }

    /// The run ended (done or failed): no more lines.
    fn stop(&self) {
        if let Some(running) = self.running.lock().ok().and_then(|mut slot| slot.take()) {
            running.ticker.abort();
        }
    }
}

fn parse_target(text: &str) -> Option<Target> {
    match text {
        "head" => Some(Target::Head),
        "base" => Some(Target::Base),
        number => number.parse().ok().map(Target::Version),
    }
}

/// The command line of [`main`]: `[migrate] <subcommand> …`.
#[derive(Debug, clap::Parser)]
#[command(about = "Apply, inspect and revert the migrations embedded in this binary")]
struct Standalone {
    #[command(flatten)]
    command: MigrateCommand,
}

/// Run `migrate` from the process's command line and exit with its code:
/// for applications without clap. A leading `migrate` argument is skipped,
/// so `app migrate status` and `app status` both work.
pub fn main(migrator: &Migrator) -> ! {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|arg| arg == "migrate") {
        args.remove(1);
    }
    let parsed = <Standalone as clap::Parser>::try_parse_from(args);
    let code = match parsed {
        Ok(cli) => cli.command.run_blocking(migrator),
        Err(error) => {
            let _ = error.print();
            if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            }
        }
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// One of each error variant, as the library makes them; the match
    /// without a wildcard makes a new variant fail to compile here until
    /// it has a sample.
    fn every_error() -> Vec<Error> {
        let source = || sqlx::Error::PoolTimedOut;
        let path = || "postgres/2_add_email.sql".to_owned();
        let samples = vec![
            Error::InvalidSource {
                problems: vec!["2_x.sql: two files with version 2".to_owned()],
            },
            Error::InvalidConfig("the table name is empty".to_owned()),
            Error::NoMigrationsForDialect {
                dialect: crate::Dialect::MySql,
            },
            Error::InvalidTarget("version 42 is not one of this binary's".to_owned()),
            Error::Irreversible {
                version: 2,
                source_path: path(),
            },
            Error::UndoFailed {
                version: 2,
                source_path: path(),
                statement: Some(1),
                line: Some(2),
                excerpt: Some("DROP TABLE x".to_owned()),
                source: source(),
            },
            Error::ChainMismatch {
                version: 2,
                source_path: path(),
            },
            Error::Connect {
                url: "postgres://app:***@db/app".to_owned(),
                attempts: 3,
                waited: Duration::from_secs(2),
                reason: "connection refused".to_owned(),
            },
            Error::UnsupportedBackend("Oracle".to_owned()),
            Error::MissingFeature {
                scheme: "mysql".to_owned(),
                feature: "mysql",
            },
            Error::InvalidUrl {
                url: "postgres:/x".to_owned(),
                reason: "no host".to_owned(),
            },
            Error::Database {
                context: "cannot read the history table".to_owned(),
                source: source(),
            },
            Error::LockTimeout {
                waited: Duration::from_secs(60),
                holder: Some("host 1".to_owned()),
            },
            Error::ChecksumMismatch {
                version: 2,
                source_path: path(),
                applied: "00".to_owned(),
                embedded: "01".to_owned(),
            },
            Error::UnknownVersion {
                version: 9,
                description: "later".to_owned(),
            },
            Error::OutOfOrder {
                version: 2,
                source_path: path(),
                newest_applied: 3,
            },
            Error::FailedMigration {
                version: 2,
                description: "add email".to_owned(),
                statement: Some(1),
                error: Some("no such table".to_owned()),
            },
            Error::ForeignKeyViolation {
                version: 2,
                source_path: path(),
                violations: vec!["posts rowid 1 → users".to_owned()],
            },
            Error::TakeOver {
                tool: "sqlx".to_owned(),
                table: "_sqlx_migrations".to_owned(),
                problem: "version 3 is not in this binary".to_owned(),
            },
            Error::UnsupportedStatement {
                version: 2,
                source_path: path(),
                line: 3,
                excerpt: "\\connect app".to_owned(),
                reason: "is a psql meta-command".to_owned(),
            },
            Error::ReadOnly {
                reason: "it is a standby".to_owned(),
            },
            Error::PlaceholderUnset {
                source_path: path(),
                name: "role".to_owned(),
                line: 1,
                env_var: "STOWAGE_PLACEHOLDER_ROLE".to_owned(),
            },
            Error::CallbackFailed {
                event: crate::Event::AfterEachMigrate,
                callback: "afterEachMigrate.sql".to_owned(),
                version: Some(2),
                message: "syntax error".to_owned(),
                source: Box::new(source()),
            },
            Error::MigrationFailed {
                version: 2,
                source_path: path(),
                statement: Some(1),
                line: Some(3),
                excerpt: Some("ALTER TABLE x".to_owned()),
                message: "no such table".to_owned(),
                transactional: false,
                source: source(),
            },
        ];
        for error in &samples {
            match error {
                Error::InvalidSource { .. }
                | Error::InvalidConfig(_)
                | Error::NoMigrationsForDialect { .. }
                | Error::InvalidTarget(_)
                | Error::Irreversible { .. }
                | Error::UndoFailed { .. }
                | Error::ChainMismatch { .. }
                | Error::Connect { .. }
                | Error::UnsupportedBackend(_)
                | Error::MissingFeature { .. }
                | Error::InvalidUrl { .. }
                | Error::Database { .. }
                | Error::LockTimeout { .. }
                | Error::ChecksumMismatch { .. }
                | Error::UnknownVersion { .. }
                | Error::OutOfOrder { .. }
                | Error::FailedMigration { .. }
                | Error::ForeignKeyViolation { .. }
                | Error::TakeOver { .. }
                | Error::UnsupportedStatement { .. }
                | Error::ReadOnly { .. }
                | Error::PlaceholderUnset { .. }
                | Error::CallbackFailed { .. }
                | Error::MigrationFailed { .. } => {}
            }
        }
        samples
    }

    /// The subcommands, as typed.
    const SUBCOMMANDS: [&str; 12] = [
        "up", "down", "status", "stamp", "verify", "check", "wait", "plan", "adopt", "show", "new",
        "repair",
    ];

    /// Every command an error's advice names (a `…` span starting with a
    /// subcommand) is one the binary takes as written: every argument
    /// filled in, nothing left to guess.
    #[test]
    fn every_command_in_the_advice_runs_as_written() {
        let mut checked = 0;
        for error in every_error() {
            let text = error.to_string();
            for (i, span) in text.split('`').enumerate() {
                let words: Vec<&str> = span.split_whitespace().collect();
                let words = match words.first() {
                    Some(&"migrate") => &words[1..],
                    _ => &words[..],
                };
                if i % 2 == 0 || !words.first().is_some_and(|w| SUBCOMMANDS.contains(w)) {
                    continue;
                }
                let parsed = <Standalone as clap::Parser>::try_parse_from(
                    std::iter::once("app").chain(words.iter().copied()),
                );
                assert!(
                    parsed.is_ok(),
                    "`{span}` in \"{text}\" is not a command the binary takes: {}",
                    parsed.err().map(|e| e.to_string()).unwrap_or_default()
                );
                checked += 1;
            }
        }
        // repair --accept-checksums (twice), repair --clear-failed 2
        // (twice: a failed row, a migration that failed outside a
        // transaction).
        assert!(checked >= 4, "only {checked} commands found in the advice");
    }
}
