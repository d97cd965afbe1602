//! The names stowage gives test databases and templates, and the URLs
//! that reach them: every database it creates is named `stowage_test_…`
//! (or `stowage_tpl_…` for a template), and [`cleanup`](super::cleanup)
//! touches no other.

use crate::connect::redact;
use crate::{Dialect, Error, Migrator};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of every database [`TestDb`] creates; [`cleanup`] drops only these.
pub(super) const PREFIX: &str = "stowage_test_";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A new test database name: `stowage_test_<created>_<process>_<n>`.
pub(super) fn new_name() -> String {
    format!(
        "{PREFIX}{}_{}_{}",
        now_secs(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn dialect_of(url: &str) -> Result<Dialect, Error> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Dialect::Postgres)
    } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        Ok(Dialect::MySql)
    } else if url.starts_with("sqlite:") {
        Ok(Dialect::Sqlite)
    } else {
        Err(Error::InvalidUrl {
            url: redact(url),
            reason: "the scheme is not postgres, mysql or sqlite".to_owned(),
        })
    }
}

/// Replace the database (the URL's path) of a server URL.
pub(super) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

pub(super) fn sqlite_dir() -> PathBuf {
    std::env::temp_dir().join("stowage-testdb")
}

/// The server tests use: `STOWAGE_TEST_DATABASE_URL`, else `DATABASE_URL`,
/// else SQLite in the temporary folder.
pub fn server_from_env() -> String {
    std::env::var("STOWAGE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "sqlite://".to_owned())
}

/// The template's name: the set's fingerprint (its chain head, repeatable
/// migrations and callbacks), so that a changed set of migrations gets a
/// template of its own.
///
/// # Errors
///
/// When the migrator has no migrations for `dialect`.
pub fn template_name(migrator: &Migrator, dialect: Dialect) -> Result<String, Error> {
    let set = migrator
        .set(dialect)
        .ok_or(Error::NoMigrationsForDialect { dialect })?;
    let chain = set.fingerprint();
    let hex: String = chain.iter().take(12).map(|b| format!("{b:02x}")).collect();
    Ok(format!("stowage_tpl_{hex}"))
}

/// The part of a template's name that is its chain head.
pub(super) fn template_hash(template: &str) -> &str {
    template.strip_prefix("stowage_tpl_").unwrap_or(template)
}

/// Our own names only: nothing to quote.
pub(super) fn plain_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether a test database's name says it was made before `cutoff` (in
/// seconds since the epoch).
pub(super) fn made_before(name: &str, cutoff: u64) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.split('_').next())
        .and_then(|secs| secs.parse::<u64>().ok())
        .is_some_and(|made| made < cutoff)
}
