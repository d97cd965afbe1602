//! The `migrate` subcommands, for the application's own binary (feature `cli`).
//!
//! Nest [`MigrateCommand`] in the application's clap parser:
//!
//! ```no_run
//! use clap::Parser;
//!
//! static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../migrations");
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
//!
//! `check` gives the most serious of 5, 6, 7, 4 that applies: for a CI step
//! ("everything applied") or a readiness probe.

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

/// `migrate`: inspect and change the database's migrations with the ones
/// embedded in this binary.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateCommand {
    /// The database, e.g. postgres://user:password@host/db, mysql://…, sqlite://file.db;
    /// without it, DATABASE_URL, or the file DATABASE_URL_FILE names.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// How long to wait for the database to come up, in seconds.
    #[arg(long, default_value_t = 60, global = true)]
    pub connect_timeout: u64,
    /// Say nothing but results and errors (no progress lines).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also say which file each migration comes from and where the
    /// database is.
    #[arg(long, short, global = true)]
    pub verbose: bool,
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
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    /// modified or missing; 4 pending, 5 failed, 6 modified, 7 missing.
    Check,
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
    /// Run the command on a Tokio runtime of its own; the exit code.
    pub fn run_blocking(&self, migrator: &Migrator) -> i32 {
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

    /// Run the command; the exit code. Output goes to stdout, errors to stderr.
    pub async fn run(&self, migrator: &Migrator) -> i32 {
        match self.execute(migrator).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error}");
                EXIT_ERROR
            }
        }
    }

    async fn execute(&self, migrator: &Migrator) -> Result<i32, Error> {
        if let Action::Show { version } = self.action {
            return Ok(show(migrator, version));
        }
        let from_env = match self.database_url {
            Some(_) => None,
            None => crate::database_url()?,
        };
        let Some(url) = self
            .database_url
            .as_deref()
            .or(from_env.as_deref())
            .filter(|url| !url.trim().is_empty())
        else {
            eprintln!(
                "error: no database: set DATABASE_URL (or DATABASE_URL_FILE, a file holding it) \
                 or pass --database-url"
            );
            return Ok(EXIT_USAGE);
        };
        let target = match &self.action {
            Action::Stamp { target, .. } => match parse_target(target) {
                Some(target) => Some(target),
                None => {
                    eprintln!(
                        "error: stamp takes `head`, `base` or a version number, not `{target}`"
                    );
                    return Ok(EXIT_USAGE);
                }
            },
            _ => None,
        };
        // Only the commands that write a history create a missing database:
        // a mistyped name given to `status` must not leave an empty one behind.
        let creates = matches!(self.action, Action::Up { .. } | Action::Stamp { .. });
        // `adopt` reads the other tool's table: its database must exist.
        let options = ConnectOptions::default()
            .timeout(Duration::from_secs(self.connect_timeout))
            .create_database(creates)
            .say_waiting(true);
        let pool: sqlx::AnyPool = crate::connect_with(url, options).await?;
        if self.verbose {
            eprintln!("connected to {}", crate::connect::redact(url));
        }
        let code = match &self.action {
            Action::Up { to } => {
                let progress = Progress::new(self.quiet, self.verbose);
                let migrator = progress.attach(migrator.clone());
                let report = match to {
                    Some(version) => migrator.run_to(&pool, *version).await,
                    None => migrator.run(&pool).await,
                };
                progress.stop();
                println!("{}", report?);
                EXIT_OK
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
                if !yes {
                    let plan = migrator.plan(&pool, target).await?;
                    println!("{plan}");
                    eprintln!(
                        "nothing changed: `down` reverts {} migration{} as above; run it again with --yes",
                        plan.steps.len(),
                        if plan.steps.len() == 1 { "" } else { "s" }
                    );
                    return Ok(EXIT_USAGE);
                }
                println!("{}", migrator.undo(&pool, target).await?);
                EXIT_OK
            }
            Action::Status { json } => {
                let status = migrator.status(&pool).await?;
                if *json {
                    match serde_json::to_string_pretty(&status) {
                        Ok(text) => println!("{text}"),
                        Err(error) => {
                            eprintln!("error: cannot write JSON: {error}");
                            return Ok(EXIT_ERROR);
                        }
                    }
                } else {
                    println!("{status}");
                }
                EXIT_OK
            }
            Action::Stamp { yes, .. } => {
                let plural = |n: usize| if n == 1 { "" } else { "s" };
                let target = target.unwrap_or(Target::Head);
                let above = match target {
                    Target::Version(v) => Some(v),
                    Target::Base => Some(0),
                    _ => None,
                };
                if let Some(above) = above
                    && !yes
                {
                    let status = migrator.status(&pool).await?;
                    let removed: Vec<String> = status
                        .migrations
                        .iter()
                        .filter(|m| !m.repeatable && m.version > above)
                        .filter(|m| m.state != crate::MigrationState::Pending)
                        .map(|m| m.version.to_string())
                        .collect();
                    if !removed.is_empty() {
                        eprintln!(
                            "nothing changed: this stamp removes the history rows of {} \
                             migration{} ({}) without reverting their SQL; run it again with --yes",
                            removed.len(),
                            plural(removed.len()),
                            removed.join(", ")
                        );
                        return Ok(EXIT_USAGE);
                    }
                }
                let report = migrator.stamp(&pool, target).await?;
                let at = report
                    .head()
                    .map_or_else(|| "base".to_owned(), |v| format!("version {v}"));
                let (stamped, removed) = (report.applied().len(), report.unrecorded());
                let mut said = format!(
                    "stamped {stamped} migration{} as applied without running them",
                    plural(stamped)
                );
                if !removed.is_empty() {
                    let versions: Vec<String> =
                        removed.iter().map(|r| r.version.to_string()).collect();
                    said = format!(
                        "{said}, and removed the history rows of {} migration{} above {at} ({}) \
                         without reverting their SQL",
                        removed.len(),
                        plural(removed.len()),
                        versions.join(", ")
                    );
                }
                println!("{said}; now at {at}");
                EXIT_OK
            }
            Action::Verify => {
                let problems = migrator.verify(&pool).await?;
                if problems.is_empty() {
                    println!("ok: the history matches the binary");
                    EXIT_OK
                } else {
                    for problem in &problems {
                        println!("problem: {problem}");
                    }
                    eprintln!(
                        "{} problem{} found",
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" }
                    );
                    EXIT_PROBLEMS
                }
            }
            Action::Check => {
                let status = migrator.status(&pool).await?;
                let count = |state| {
                    status
                        .migrations
                        .iter()
                        .filter(|m| m.state == state)
                        .count()
                };
                use crate::MigrationState as S;
                let (code, what) = [
                    (EXIT_FAILED, count(S::Failed), "failed part-way"),
                    (EXIT_MODIFIED, count(S::Modified), "modified since applied"),
                    (
                        EXIT_MISSING,
                        count(S::Missing),
                        "applied but not in this binary",
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
                match code {
                    EXIT_OK => println!(
                        "ok: the {} database is at {at}, this binary's head",
                        status.dialect
                    ),
                    _ => println!(
                        "not ready: {what}; the {} database is at {at}",
                        status.dialect
                    ),
                }
                code
            }
            Action::Plan { to, down } => {
                let target = match (to, down) {
                    (_, Some(steps)) => Target::Steps(*steps),
                    (Some(version), _) => Target::Version(*version),
                    _ => Target::Head,
                };
                println!("{}", migrator.plan(&pool, target).await?);
                EXIT_OK
            }
            // Answered above, without a database.
            Action::Show { version } => show(migrator, *version),
            Action::Adopt { from } => {
                let report = migrator.adopt(&pool, *from).await?;
                println!(
                    "took over {} migration{} from {from}'s {}; now at {}",
                    report.applied().len(),
                    if report.applied().len() == 1 { "" } else { "s" },
                    from.history_table(),
                    report
                        .head()
                        .map_or_else(|| "base".to_owned(), |v| format!("version {v}"))
                );
                EXIT_OK
            }
            Action::Repair {
                accept_checksums,
                clear_failed,
            } => {
                let action = match (accept_checksums, clear_failed) {
                    (_, Some(version)) => RepairAction::ClearFailed(*version),
                    _ => RepairAction::AcceptChecksums,
                };
                let changed = migrator.repair(&pool, action).await?;
                println!(
                    "repaired: {changed} history row{} changed",
                    if changed == 1 { "" } else { "s" }
                );
                EXIT_OK
            }
        };
        pool.close().await;
        Ok(code)
    }
}

/// `show`: each embedded file of `version`, up then down; the exit code.
fn show(migrator: &Migrator, version: i64) -> i32 {
    let found: Vec<&crate::Migration> = migrator
        .sets()
        .iter()
        .filter_map(|set| set.get(version))
        .collect();
    if found.is_empty() {
        let versions: Vec<String> = migrator
            .sets()
            .first()
            .map(|set| set.iter().map(|m| m.version().to_string()).collect())
            .unwrap_or_default();
        eprintln!(
            "error: this binary has no migration {version}; its versions: {}",
            if versions.is_empty() {
                "none".to_owned()
            } else {
                versions.join(", ")
            }
        );
        return EXIT_ERROR;
    }
    for (index, m) in found.iter().enumerate() {
        if index > 0 {
            println!();
        }
        let name = format!("{} {}", m.version(), m.description());
        println!("-- {name}: up ({})", m.source_path());
        println!("{}", m.up_sql().trim_end());
        match m.down_sql() {
            Some(down) => println!("\n-- {name}: down\n{}", down.trim_end()),
            None => println!("\n-- {name}: no down SQL, `down` cannot revert it"),
        }
    }
    EXIT_OK
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
        let (before, after) = (self.clone(), self.clone());
        migrator
            .on(crate::Event::BeforeEachMigrate, move |ctx| {
                before.started(ctx.migration());
                Box::pin(std::future::ready(Ok(())))
            })
            .on(crate::Event::AfterEachMigrate, move |_| {
                after.finished();
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

    fn finished(&self) {
        let Some(done) = self.running.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        done.ticker.abort();
        eprintln!(
            "{} {} in {:.1?}",
            self.paint("32", "applied"),
            done.label,
            done.started.elapsed()
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
