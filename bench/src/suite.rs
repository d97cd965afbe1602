//! The test-suite benchmark, as a user runs a suite: the same ten or
//! hundred tests written with `#[stowage::test]` (`tests/suite_stowage.rs`)
//! and with `#[sqlx::test]` (`tests/suite_sqlx.rs`), at 10, 100 and 500
//! migrations, run with `cargo test` and with `cargo nextest run` after the
//! build; the wall time of each command, side by side in one run.
//!
//! Each configuration's stowage suite is run once unmeasured first (it
//! builds its template there, as the first run after a change to the
//! migrations does), then both `trials` times in turns, and the medians
//! are reported.

use crate::{Backend, Result, median};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    CargoTest,
    Nextest,
}

impl Runner {
    fn name(self) -> &'static str {
        match self {
            Runner::CargoTest => "cargo test",
            Runner::Nextest => "cargo nextest run",
        }
    }

    /// The command that runs the tests whose names contain `filter` in
    /// test target `target` of this package.
    fn command(self, target: &str, filter: &str) -> Command {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        match self {
            Runner::CargoTest => {
                command.args([
                    "test",
                    "-q",
                    "-p",
                    "stowage-bench",
                    "--test",
                    target,
                    "--",
                    filter,
                ]);
            }
            Runner::Nextest => {
                command.args([
                    "nextest",
                    "run",
                    "--cargo-quiet",
                    "-p",
                    "stowage-bench",
                    "--test",
                    target,
                    "--status-level",
                    "none",
                    "--final-status-level",
                    "none",
                    filter,
                ]);
            }
        }
        command
    }
}

/// The configurations to run: `None` runs every value.
#[derive(Debug, Default)]
pub(crate) struct Only {
    migrations: Option<usize>,
    tests: Option<usize>,
    runner: Option<Runner>,
}

impl Only {
    /// Sets the filter named by `option` (`--migrations`, `--tests`,
    /// `--runner`) from its command-line value.
    pub(crate) fn set(&mut self, option: &str, value: &str) -> Result<()> {
        let bad = |choices: &str| -> Result<()> {
            Err(
                format!("{option} {value}: not one of the suite's configurations; use {choices}")
                    .into(),
            )
        };
        match option {
            "--migrations" => match value.parse() {
                Ok(n) if MIGRATIONS.contains(&n) => self.migrations = Some(n),
                _ => return bad("10, 100 or 500"),
            },
            "--tests" => match value.parse() {
                Ok(n) if TESTS.contains(&n) => self.tests = Some(n),
                _ => return bad("10 or 100"),
            },
            "--runner" => match value {
                "cargo-test" => self.runner = Some(Runner::CargoTest),
                "nextest" => self.runner = Some(Runner::Nextest),
                _ => return bad("cargo-test or nextest"),
            },
            _ => return Err(format!("unknown option {option}").into()),
        }
        Ok(())
    }

    /// Whether the configuration is one to run.
    fn admits(&self, migrations: usize, tests: usize, runner: Runner) -> bool {
        self.migrations.is_none_or(|n| n == migrations)
            && self.tests.is_none_or(|n| n == tests)
            && self.runner.is_none_or(|r| r == runner)
    }
}

const MIGRATIONS: [usize; 3] = [10, 100, 500];
const TESTS: [usize; 2] = [10, 100];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Stowage,
    /// stowage with `STOWAGE_TEST_SPARES=0`: every test copies the
    /// template and drops its copy.
    SparesOff,
    Sqlx,
}

const SIDES: [Side; 3] = [Side::Stowage, Side::SparesOff, Side::Sqlx];

impl Side {
    fn target(self) -> &'static str {
        match self {
            Side::Stowage | Side::SparesOff => "suite_stowage",
            Side::Sqlx => "suite_sqlx",
        }
    }
}

fn module(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "pg",
        Backend::MySql => "my",
        Backend::Sqlite => "lite",
    }
}

/// One run of `tests` tests of `side`'s suite at `migrations` migrations:
/// its wall time, after checking that exactly those tests ran and passed.
fn run_once(
    runner: Runner,
    side: Side,
    backend: Backend,
    migrations: usize,
    tests: usize,
    server: &str,
) -> Result<Duration> {
    // `t0` selects t00 to t09; the module path alone, all hundred.
    let filter = format!(
        "m{migrations}::{}::{}",
        module(backend),
        if tests == 10 { "t0" } else { "" }
    );
    let mut command = runner.command(side.target(), &filter);
    // Each side reads its own variable; neither sees the other's.
    command
        .env_remove("DATABASE_URL")
        .env_remove("STOWAGE_TEST_DATABASE_URL");
    if backend != Backend::Sqlite {
        let var = match side {
            Side::Stowage | Side::SparesOff => "STOWAGE_TEST_DATABASE_URL",
            Side::Sqlx => "DATABASE_URL",
        };
        command.env(var, server);
    }
    match side {
        Side::SparesOff => command.env("STOWAGE_TEST_SPARES", "0"),
        _ => command.env_remove("STOWAGE_TEST_SPARES"),
    };
    let started = Instant::now();
    let out = command.output()?;
    let elapsed = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let what = format!(
        "{} of {} ({filter}) on {backend:?}",
        runner.name(),
        side.target()
    );
    if !out.status.success() {
        return Err(format!("{what} failed:\n{text}").into());
    }
    if passed(&text) != Some(tests) {
        return Err(format!("{what} did not run exactly {tests} tests:\n{text}").into());
    }
    Ok(elapsed)
}

/// The number of passed tests in a runner's summary ("10 passed").
fn passed(output: &str) -> Option<usize> {
    let at = output.rfind(" passed")?;
    let digits = output[..at].rsplit(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

fn nextest_installed() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

pub(crate) fn run(backends: &[Backend], trials: usize, only: &Only) -> Result<String> {
    let mut runners = vec![Runner::CargoTest];
    let nextest = nextest_installed();
    if only.runner == Some(Runner::Nextest) && !nextest {
        return Err(
            "--runner nextest: cargo-nextest is not installed (`cargo install cargo-nextest`)"
                .into(),
        );
    }
    if nextest {
        runners.push(Runner::Nextest);
    } else {
        eprintln!(
            "suite: cargo-nextest is not installed (`cargo install cargo-nextest`); cargo test only"
        );
    }
    // The build, apart: both runners find it done (the same profile).
    let build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--no-run", "-p", "stowage-bench"])
        .args([
            "--test",
            Side::Stowage.target(),
            "--test",
            Side::Sqlx.target(),
        ])
        .output()?;
    if !build.status.success() {
        return Err(format!(
            "building the suites: {}",
            String::from_utf8_lossy(&build.stderr)
        )
        .into());
    }
    let mut out = format!(
        "The same suite written with `#[stowage::test]` and with `#[sqlx::test]` (each test writes a row to \
         two tables and reads one back): the wall time of the whole command after the build, median of \
         {trials} runs taken in turns, after one unmeasured run of stowage's (where it builds its \
         template, as the first run after a change to the migrations does). *Spares off*: stowage with \
         `STOWAGE_TEST_SPARES=0` (each test copies the template and drops its copy).\n\n\
         | backend | migrations | tests | runner | stowage | spares off | sqlx::test | ÷ sqlx | ÷ spares off |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---:|\n"
    );
    for &backend in backends {
        let server = match backend {
            Backend::Sqlite => String::new(),
            _ => crate::server_url(backend)?,
        };
        for migrations in MIGRATIONS {
            for tests in TESTS {
                for &runner in &runners {
                    if !only.admits(migrations, tests, runner) {
                        continue;
                    }
                    // Unmeasured: stowage's template, built once per set.
                    run_once(runner, Side::Stowage, backend, migrations, tests, &server)?;
                    let mut times = [Vec::new(), Vec::new(), Vec::new()];
                    for _ in 0..trials {
                        for (side, times) in SIDES.into_iter().zip(&mut times) {
                            times
                                .push(run_once(runner, side, backend, migrations, tests, &server)?);
                        }
                    }
                    let [ours, off, theirs] = times.map(|t| median(t).as_secs_f64());
                    eprintln!(
                        "{backend:?} {migrations} migrations, {tests} tests, {}: {ours:.2} s, spares off {off:.2} s, sqlx {theirs:.2} s",
                        runner.name()
                    );
                    out.push_str(&format!(
                        "| {backend:?} | {migrations} | {tests} | {} | {ours:.2} s | {off:.2} s | {theirs:.2} s | {:.0} % | {:.0} % |\n",
                        runner.name(),
                        100.0 * ours / theirs,
                        100.0 * ours / off,
                    ));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_passed_count_is_read_from_either_summary() {
        assert_eq!(
            super::passed(
                "test result: ok. 10 passed; 0 failed; 0 ignored; 0 measured; 890 filtered out; finished in 1.2s"
            ),
            Some(10)
        );
        assert_eq!(
            super::passed("     Summary [   3.1s] 100 tests run: 100 passed, 800 skipped"),
            Some(100)
        );
        assert_eq!(super::passed("error: no tests"), None);
    }

    #[test]
    fn only_takes_the_suite_configurations_and_refuses_others() {
        let mut only = super::Only::default();
        only.set("--migrations", "500").unwrap();
        only.set("--tests", "100").unwrap();
        only.set("--runner", "nextest").unwrap();
        assert_eq!(only.migrations, Some(500));
        assert_eq!(only.tests, Some(100));
        assert_eq!(only.runner, Some(super::Runner::Nextest));
        assert!(only.admits(500, 100, super::Runner::Nextest));
        assert!(!only.admits(500, 10, super::Runner::Nextest));
        assert!(!only.admits(500, 100, super::Runner::CargoTest));
        assert!(super::Only::default().admits(10, 10, super::Runner::CargoTest));
        for (option, value) in [
            ("--migrations", "50"),
            ("--tests", "ten"),
            ("--runner", "cargo"),
        ] {
            let error = only.set(option, value).unwrap_err().to_string();
            assert!(error.contains(value) && error.contains("use"), "{error}");
        }
    }
}
