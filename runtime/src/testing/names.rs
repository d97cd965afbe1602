//! The names stowage gives test databases and templates, and the URLs
//! that reach them. Every database it creates carries the tag of the
//! project that made it (a hash of the host and of the crate's folder), so
//! that stowage only ever drops its own project's:
//!
//! - `stowage_tpl_<project>_<lineage>_<set>`: a template; the lineage names
//!   the migrations folder (a later set of the same folder replaces it), the
//!   set its migrations;
//! - `stowage_test_<project>_<made>_<pid>_<n>`: a test's database, made at
//!   `made` (seconds, base 36) by process `pid` (base 36); with
//!   `_spare_<set>` at the end, a spare copy of that set's template;
//! - `stowage_kept_…`: a failing test's database, kept for a look.

use crate::{Dialect, Error, Migrator};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of a test's database.
pub(super) const PREFIX: &str = "stowage_test_";
/// The prefix of a failing test's kept database.
pub(super) const KEPT: &str = "stowage_kept_";
/// The prefix of a template.
pub(super) const TEMPLATE: &str = "stowage_tpl_";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A new test database name: `stowage_test_<project>_<made>_<pid>_<n>`.
pub(super) fn new_name() -> String {
    format!(
        "{PREFIX}{}_{}_{}_{}",
        project(),
        base36(now_secs()),
        base36(u64::from(std::process::id())),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The name a kept test database is renamed to.
pub(super) fn kept_name(name: &str) -> String {
    name.strip_prefix(PREFIX)
        .map_or_else(|| name.to_owned(), |rest| format!("{KEPT}{rest}"))
}

/// This project's tag: six base-36 digits of a hash of the host's name and
/// of the crate's folder (`CARGO_MANIFEST_DIR`, which cargo sets for tests;
/// else the current folder).
pub(super) fn project() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::env::var("HOSTNAME"))
            .or_else(|_| std::env::var("COMPUTERNAME"))
            .unwrap_or_default();
        let folder = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        tag(&[host.trim().as_bytes(), folder.to_string_lossy().as_bytes()])
    })
}

/// Six base-36 digits of a hash of `parts`.
fn tag(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
        hash.update([0]);
    }
    let hash = hash.finalize();
    let mut value = [0u8; 8];
    value.copy_from_slice(&hash[..8]);
    // 36^6: exactly six digits.
    let value = u64::from_le_bytes(value) % 2_176_782_336;
    format!("{:0>6}", base36(value))
}

fn base36(mut value: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn from_base36(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 36).ok()
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What one of this project's databases is, read from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role {
    /// A template of a migration set, of a migrations folder (`lineage`).
    Template { lineage: String, set: String },
    /// A test's database (or a half-made MySQL spare).
    Test,
    /// A spare copy of set `set`'s template (the set's first 12 digits).
    Spare { set: String },
    /// A failing test's, kept.
    Kept,
}

/// One of this project's databases, as its name describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owned {
    pub(super) role: Role,
    /// When it was made, in seconds since the epoch (0 for a template).
    pub(super) made: u64,
    /// The process that made it (0 for a template).
    pub(super) pid: u32,
}

/// `name` read as one of this project's databases; `None` for any other
/// name (another project's, or not stowage's).
pub(super) fn parse(name: &str) -> Option<Owned> {
    parse_for(name, project())
}

fn parse_for(name: &str, project: &str) -> Option<Owned> {
    if !plain_name(name) {
        return None;
    }
    let own = |rest: &str| {
        rest.strip_prefix(project)?
            .strip_prefix('_')
            .map(str::to_owned)
    };
    if let Some(rest) = name.strip_prefix(TEMPLATE).and_then(own) {
        let (lineage, set) = rest.split_once('_')?;
        let role = Role::Template {
            lineage: lineage.to_owned(),
            set: set.to_owned(),
        };
        return Some(Owned {
            role,
            made: 0,
            pid: 0,
        });
    }
    let (kept, rest) = match name.strip_prefix(PREFIX) {
        Some(rest) => (false, rest),
        None => (true, name.strip_prefix(KEPT)?),
    };
    let rest = own(rest)?;
    let mut parts = rest.split('_');
    let made = from_base36(parts.next()?)?;
    let pid = u32::try_from(from_base36(parts.next()?)?).ok()?;
    parts.next()?.parse::<u64>().ok()?;
    let role = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) if kept => Role::Kept,
        (None, _, _) => Role::Test,
        (Some("spare"), Some(set), None) if !kept => Role::Spare {
            set: set.to_owned(),
        },
        _ => return None,
    };
    Some(Owned { role, made, pid })
}

/// Whether process `pid` of this host may still be running: `false` only
/// when `/proc` says it is not.
pub(super) fn may_be_running(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

pub(super) use crate::connect::{dialect_of_url as dialect_of, with_database};

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

/// The template's name: this project's tag, the lineage (the migrations
/// folder) and the set's fingerprint (its chain head, repeatable migrations
/// and callbacks), so that a changed set of migrations gets a template of its
/// own, which replaces that of the folder's earlier set.
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
    // The folder, in a debug build; else the set's first migration.
    let lineage = match (migrator.source_dir(), set.iter().next()) {
        (Some(dir), _) => tag(&[dir.as_bytes()]),
        (None, Some(first)) => tag(&[
            &first.version().to_le_bytes(),
            first.description().as_bytes(),
        ]),
        (None, None) => tag(&[]),
    };
    Ok(format!("{TEMPLATE}{}_{}_{hex}", project(), &lineage[..4]))
}

/// The part of a template's name that is its set's fingerprint.
pub(super) fn template_hash(template: &str) -> &str {
    template.rsplit('_').next().unwrap_or(template)
}

/// Our own names only: nothing to quote.
pub(super) fn plain_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_this_projects() {
        let name = new_name();
        assert!(name.len() <= 40, "{name}");
        let owned = parse(&name).unwrap();
        assert_eq!(owned.role, Role::Test);
        assert_eq!(owned.pid, std::process::id());
        assert!(owned.made + 5 > now_secs());
        let kept = kept_name(&name);
        assert_eq!(parse(&kept).unwrap().role, Role::Kept);
        let spare = format!("{name}_spare_0123456789ab");
        assert!(spare.len() <= 63, "{spare}");
        assert_eq!(
            parse(&spare).unwrap().role,
            Role::Spare {
                set: "0123456789ab".to_owned()
            }
        );
        let template = format!("{TEMPLATE}{}_ab12_{}", project(), "0".repeat(24));
        assert!(template.len() <= 63);
        assert!(matches!(
            parse(&template).unwrap().role,
            Role::Template { .. }
        ));
        assert_eq!(template_hash(&template), "0".repeat(24));
    }

    #[test]
    fn other_projects_and_other_names_are_not_ours() {
        let other = if project() == "000000" {
            "000001"
        } else {
            "000000"
        };
        let theirs = format!("{PREFIX}{other}_1_2_3");
        assert_eq!(parse(&theirs), None);
        assert!(parse_for(&theirs, other).is_some());
        for name in [
            "stowage_test_1000000000_4242_0",
            "postgres",
            "stowage_test_",
            &format!("{PREFIX}{}_x!_1_1", project()),
            &format!("{PREFIX}{}_1_2_3_extra", project()),
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }
}
