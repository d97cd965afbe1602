//! The progress lines `up` prints while it works.

use crate::Migrator;
use std::time::Duration;

/// The lines `up` prints on stderr while it works: one when each migration
/// starts, one when it ends with its duration, and one every few seconds
/// while a long one runs; in colour on a terminal unless `NO_COLOR` is set.
#[derive(Clone)]
pub(super) struct Progress {
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
    pub(super) fn new(quiet: bool, verbose: bool) -> Progress {
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
    pub(super) fn attach(&self, migrator: Migrator) -> Migrator {
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
    pub(super) fn stop(&self) {
        if let Some(running) = self.running.lock().ok().and_then(|mut slot| slot.take()) {
            running.ticker.abort();
        }
    }
}
