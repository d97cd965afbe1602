//! Readiness: `check`'s exit code for a status, and `wait`'s polling for
//! the database and for this binary's head.

use super::{EXIT_FAILED, EXIT_MISSING, EXIT_MODIFIED, EXIT_OK, EXIT_OUT_OF_ORDER, EXIT_PENDING};
use crate::{ConnectOptions, Error, Migrator};
use std::time::Duration;

/// `check`'s exit code for a status, and what it says; `migrator` says
/// whether `up` takes pending migrations older than the newest applied.
pub(super) fn readiness(migrator: &Migrator, status: &crate::Status) -> (i32, String) {
    let count = |state| {
        status
            .migrations
            .iter()
            .filter(|m| m.state == state && !m.compatible)
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
    let head = status.head.unwrap_or(0);
    let missing = status.migrations.iter().filter(|m| m.state == S::Missing);
    let (beside, lacking): (Vec<_>, Vec<_>) = missing.partition(|m| m.compatible);
    let said = match code {
        EXIT_OK if !beside.is_empty() => format!(
            "ok: the {} database is at {at}, this binary's head, beside {} newer compatible \
             migration{} it does not have ({})",
            status.dialect,
            beside.len(),
            if beside.len() == 1 { "" } else { "s" },
            beside
                .iter()
                .map(|m| m.version.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        EXIT_OK => format!(
            "ok: the {} database is at {at}, this binary's head",
            status.dialect
        ),
        EXIT_MISSING if lacking.iter().all(|m| m.undoable && m.version > head) => format!(
            "not ready: {what}; the {} database is at {at}; this binary can undo them from \
             the down SQL the history keeps: `down --to {head} --yes`",
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
pub(super) async fn wait_for_head(
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
pub(super) async fn wait_for_database(
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

/// How often `wait` reads the history.
const WAIT_POLL: Duration = Duration::from_millis(500);
