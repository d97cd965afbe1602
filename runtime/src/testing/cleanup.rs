//! Leaving a server as clean as it was found: the sweep at the start of a
//! run, [`cleanup`] and [`kept_databases`]. Each touches only this
//! project's databases ([`names`] says how they are marked).
//!
//! At the first test database a process makes on a server, it drops, of this
//! project's databases that no session is using:
//!
//! - the templates of the same migrations folder's earlier sets, and the
//!   spares of sets that have no template any more;
//! - the test databases of processes that are gone (killed runs; a
//!   half-made MySQL spare), or made over a day ago;
//! - with `STOWAGE_TEST_DROP_KEPT=1`, those kept by failing tests, which it
//!   otherwise lists once.

use super::names::{self, Owned, Role, dialect_of, may_be_running, now_secs};
use super::server::{self, Entry, TestServer};
use crate::Error;
use crate::connect::redact;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// A test database older than this is left over, whatever its process.
const ABANDONED: Duration = Duration::from_secs(24 * 3600);

/// Set to drop the databases kept by failing tests at the start of a run.
const DROP_KEPT: &str = "STOWAGE_TEST_DROP_KEPT";

/// Drop this project's test databases (and SQLite test files) made or
/// kept more than `older_than` ago on `server`, those kept by failing tests
/// included; the number dropped. Templates stay; databases with open
/// connections are in use and left alone.
///
/// # Errors
///
/// When the server cannot be reached or refuses to drop a database.
pub async fn cleanup(server: &str, older_than: Duration) -> Result<usize, Error> {
    let cutoff = now_secs().saturating_sub(older_than.as_secs());
    let kind = server::of(dialect_of(server)?)?;
    let mut dropped = 0;
    for (entry, owned) in ours(kind, server).await? {
        let old = owned.made < cutoff;
        if !entry.in_use && old && !matches!(owned.role, Role::Template { .. }) {
            dropped += usize::from(kind.remove(server, &entry).await?);
        }
    }
    Ok(dropped)
}

/// The names of this project's databases on `server` kept by failing tests,
/// oldest first. `STOWAGE_TEST_DROP_KEPT=1 cargo test` drops them at the
/// start of the run; so does [`cleanup`], by age.
///
/// # Errors
///
/// When the server cannot be reached.
pub async fn kept_databases(server: &str) -> Result<Vec<String>, Error> {
    let kind = server::of(dialect_of(server)?)?;
    let mut kept: Vec<(u64, String)> = ours(kind, server)
        .await?
        .into_iter()
        .filter(|(_, owned)| owned.role == Role::Kept)
        .map(|(entry, owned)| (owned.made, entry.name))
        .collect();
    kept.sort();
    Ok(kept.into_iter().map(|(_, name)| name).collect())
}

/// This project's databases on `server`, each as its name and the server
/// describe it (a MySQL spare's mark, claim or keeping overrides its name).
async fn ours(kind: &dyn TestServer, server: &str) -> Result<Vec<(Entry, Owned)>, Error> {
    let entries = kind.inventory(server).await?;
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            let mut owned = names::parse(&entry.name)?;
            // A spare's mark says it is one, unless a process owns it:
            // claimed, its mark about to go.
            match (&entry.spare_of, entry.owner) {
                (_, Some((pid, at))) => (owned.pid, owned.made) = (pid, at),
                (Some(set), None) => {
                    owned.role = Role::Spare {
                        set: set.chars().take(12).collect(),
                    };
                }
                (None, None) => {}
            }
            if entry.kept {
                owned.role = Role::Kept;
            }
            Some((entry, owned))
        })
        .collect())
}

/// Sweep this project's leftovers on `server`, once per process and server,
/// with `template` the one in use. Failing is said, not fatal: the test can
/// go on.
pub(super) async fn at_start(kind: &dyn TestServer, server: &str, template: &str) {
    static SWEPT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    {
        let Ok(mut swept) = SWEPT.lock() else { return };
        if !swept.get_or_insert_default().insert(server.to_owned()) {
            return;
        }
    }
    if let Err(error) = sweep(kind, server, template).await {
        eprintln!(
            "stowage: could not sweep the test databases left on {}: {error}",
            redact(server)
        );
    }
}

async fn sweep(kind: &dyn TestServer, server: &str, template: &str) -> Result<(), Error> {
    let Some(current) = names::parse(template) else {
        return Ok(());
    };
    let drop_kept = std::env::var_os(DROP_KEPT).is_some_and(|v| !v.is_empty() && v != "0");
    let found = ours(kind, server).await?;
    let now = now_secs();
    let mut templates: Vec<&str> = Vec::new();
    let mut kept = Vec::new();
    let mut spares = Vec::new();
    for (entry, owned) in &found {
        let leftover = match &owned.role {
            Role::Template { lineage, set } => {
                let older = matches!(&current.role,
                    Role::Template { lineage: l, set: s } if l == lineage && s != set);
                if !older {
                    templates.push(set);
                }
                older
            }
            Role::Spare { .. } => {
                // Once the templates are known.
                spares.push((entry, owned));
                false
            }
            Role::Test => {
                !may_be_running(owned.pid) || now.saturating_sub(owned.made) > ABANDONED.as_secs()
            }
            Role::Kept => {
                if !drop_kept {
                    kept.push(entry.name.as_str());
                }
                drop_kept
            }
        };
        if leftover && !entry.in_use {
            kind.remove(server, entry).await?;
        }
    }
    for (entry, owned) in spares {
        let Role::Spare { set } = &owned.role else {
            continue;
        };
        if !entry.in_use && !templates.iter().any(|t| t.starts_with(set.as_str())) {
            kind.remove(server, entry).await?;
        }
    }
    if !kept.is_empty() {
        eprintln!(
            "stowage: {} database(s) kept by failing tests on {}: {}; \
             `{DROP_KEPT}=1 cargo test` drops them at the start of the run",
            kept.len(),
            redact(server),
            kept.join(", ")
        );
    }
    Ok(())
}

/// Mark test database `name` as kept; its name now (the old one if marking
/// failed, which is said).
pub(super) async fn keep(kind: &dyn TestServer, server: &str, name: &str) -> String {
    match kind.keep(server, name).await {
        Ok(kept) => kept,
        Err(error) => {
            eprintln!("stowage: could not mark {name} as kept: {error}");
            name.to_owned()
        }
    }
}
