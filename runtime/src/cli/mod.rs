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
use output::{Outcome, say_out};
use progress::Progress;
use ready::wait_for_database;

pub use args::{Action, DevServer, MigrateCommand};
use std::time::Duration;

mod args;
mod commands;
mod output;
mod progress;
mod ready;
#[cfg(test)]
mod tests;

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
/// `drift`: the schema is not the one the migrations build.
pub const EXIT_DRIFT: i32 = 10;

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
        if let Some(outcome) = self.offline(migrator) {
            return Ok((outcome, None));
        }
        // `new --from-database URL` reads that database.
        let from_database = match &self.action {
            Action::New {
                from_database: Some(url),
                ..
            } if !url.is_empty() => Some(url.as_str()),
            _ => None,
        };
        let from_env = match (from_database, &self.database_url) {
            (None, None) => crate::database_url().map_err(unread)?,
            _ => None,
        };
        let Some(url) = from_database
            .or(self.database_url.as_deref())
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
        let (outcome, status) = match self.act(migrator, &pool, url, target, started).await {
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

    /// What a subcommand that needs no database says.
    fn offline(&self, migrator: &Migrator) -> Option<Outcome> {
        match &self.action {
            Action::Show { version } => Some(commands::show(migrator, *version)),
            Action::New {
                name,
                reversible,
                from_database: None,
                from_schema: None,
                rename,
                ..
            } => Some(match rename.is_empty() {
                true => commands::new(migrator, &name.join(" "), *reversible, None),
                false => Outcome::usage("--rename goes with --from-schema or --from-database"),
            }),
            _ => None,
        }
    }

    /// Each subcommand, once connected: one function of `commands` each.
    async fn act(
        &self,
        migrator: &Migrator,
        pool: &sqlx::AnyPool,
        url: &str,
        target: Option<Target>,
        started: std::time::Instant,
    ) -> commands::Done {
        match &self.action {
            Action::Up { to } => commands::up(migrator, pool, *to, url).await,
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
                commands::down(migrator, pool, target, *yes).await
            }
            Action::Status => commands::status(migrator, pool).await,
            Action::Stamp { yes, .. } => {
                commands::stamp(migrator, pool, target.unwrap_or(Target::Head), *yes).await
            }
            Action::Verify => commands::verify(migrator, pool).await,
            Action::Check => commands::check(migrator, pool).await,
            Action::Wait { timeout } => {
                let deadline = started + Duration::from_secs(*timeout);
                commands::wait(migrator, pool, deadline, self.quiet).await
            }
            Action::Plan { to, down } => {
                let target = match (to, down) {
                    (_, Some(steps)) => Target::Steps(*steps),
                    (Some(version), _) => Target::Version(*version),
                    _ => Target::Head,
                };
                commands::plan(migrator, pool, target).await
            }
            Action::Adopt { from } => commands::adopt(migrator, pool, *from).await,
            Action::Dump { expected, to, dev } => {
                let server = dev.dev_url.as_deref().unwrap_or(url);
                let expected = expected.then(|| to.map_or(Target::Head, Target::Version));
                commands::dump(migrator, pool, expected.map(|target| (server, target))).await
            }
            Action::Drift { dev } => {
                commands::drift(migrator, pool, dev.dev_url.as_deref().unwrap_or(url)).await
            }
            Action::Baseline { dev } => {
                commands::baseline(migrator, pool, dev.dev_url.as_deref().unwrap_or(url)).await
            }
            Action::Repair {
                accept_checksums,
                clear_failed,
            } => {
                let action = match (accept_checksums, clear_failed) {
                    (_, Some(version)) => RepairAction::ClearFailed(*version),
                    _ => RepairAction::AcceptChecksums,
                };
                commands::repair(migrator, pool, action).await
            }
            Action::New {
                name,
                reversible,
                from_database: Some(source),
                rename,
                dev,
                ..
            } => {
                let server = dev.dev_url.as_deref().unwrap_or(url);
                let said = match source.is_empty() {
                    true => "--from-database".to_owned(),
                    false => format!("--from-database {}", crate::connect::redact(source)),
                };
                let from = commands::Desired::Database(pool, *reversible, said);
                let name = name.join(" ");
                commands::new_from(migrator, server, from, &name, rename).await
            }
            Action::New {
                name,
                from_schema: Some(file),
                rename,
                dev,
                ..
            } => {
                let server = dev.dev_url.as_deref().unwrap_or(url);
                let (name, from) = (name.join(" "), commands::Desired::Schema(file));
                commands::new_from(migrator, server, from, &name, rename).await
            }
            // Answered before connecting.
            Action::Show { .. } | Action::New { .. } => Ok((
                self.offline(migrator)
                    .unwrap_or_else(|| Outcome::new(EXIT_OK, "")),
                None,
            )),
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
