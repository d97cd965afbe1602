//! `migrate new`: the next migration file, written into the source folder
//! the binary was built from, in that folder's own layout.
//!
//! The layout comes from the newest embedded migration of each set (its
//! dialect folder, its naming), the version from the folder as it is on disk
//! now (so that two `new` without a rebuild between them do not collide):
//! a timestamp when the neighbours are timestamps, else the next number.

use crate::Migrator;
use std::path::{Path, PathBuf};
use stowage_layout::{Layout, Named};

/// What was written: the files, and what to say about them.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) notes: Vec<String>,
}

/// What a new migration holds instead of the comments to fill in: its up
/// SQL and down SQL, for the folder of one dialect.
#[derive(Debug)]
pub(crate) struct Content {
    pub(crate) dialect: crate::Dialect,
    pub(crate) up: String,
    pub(crate) down: Option<String>,
}

/// Write the next migration named `name` (each dialect folder of a
/// multi-dialect set gets one), holding `content` when given (then only in
/// the folder of its dialect). Errors are for the person at the terminal.
pub(crate) fn new_migration(
    migrator: &Migrator,
    name: &str,
    reversible: bool,
    content: Option<&Content>,
) -> Result<Written, String> {
    let Some(root) = migrator.source_dir() else {
        return Err(
            "this binary was built in release mode, which keeps no path to its \
                    migrations folder; run `new` from a debug build (`cargo run -- migrate new …`)"
                .to_owned(),
        );
    };
    let root = Path::new(root);
    if !root.is_dir() {
        return Err(format!(
            "the migrations folder this binary was built from, {}, is not here; run `new` on the \
             machine and checkout that built it",
            root.display()
        ));
    }
    let slug = slug(name)?;
    // Each set's folder, and the path of its newest migration.
    let mut targets: Vec<(PathBuf, Option<&crate::Migration>)> = migrator
        .sets()
        .iter()
        .filter(|set| match (content, set.dialect()) {
            (Some(content), Some(dialect)) => content.dialect == dialect,
            _ => true,
        })
        .map(|set| {
            let newest = set.iter().last();
            let folder = set
                .dialect()
                .and(newest)
                .and_then(|m| m.source_path().split_once('/'))
                .map_or_else(|| root.to_path_buf(), |(dir, _)| root.join(dir));
            (folder, newest)
        })
        .collect();
    if targets.is_empty() {
        if let Some(content) = content.filter(|_| !migrator.sets().is_empty()) {
            return Err(format!(
                "the migrations folder has dialect folders, none for {}; create `{}/` in it first",
                content.dialect,
                content.dialect.folder()
            ));
        }
        targets.push((root.to_path_buf(), None));
    }
    let mut written = Written {
        files: Vec::new(),
        notes: Vec::new(),
    };
    let now = utc_now();
    // One version for every dialect folder: the same migration in each.
    let mut highest = None;
    for (folder, _) in &targets {
        highest = highest.max(highest_on_disk(folder)?);
        if let Some(taken) = named_on_disk(folder, &slug)? {
            return Err(format!(
                "{} already has this name; give the new migration another one (`new {} 2`, \
                 say), or write into that file if it is not applied yet",
                shown(&taken),
                slug.replace('_', " ")
            ));
        }
    }
    for (folder, newest_migration) in targets {
        let newest = newest_migration.map(crate::Migration::source_path);
        let file = newest.map(|path| path.rsplit('/').next().unwrap_or(path));
        let layout = file.map_or(Layout::Sqlx, Layout::of);
        let neighbour_reversible = newest_migration.is_some_and(|m| m.down_sql().is_some());
        let stamp_shape = file.and_then(|f| Named::read(f, layout == Layout::Diesel));
        let shape = stamp_shape.as_ref().map(|named| named.written.as_str());
        let version = next_version(&folder, shape, now, highest)?;
        let reversible =
            reversible || neighbour_reversible || content.is_some_and(|c| c.down.is_some());
        let files = layout
            .files(&version, &slug, reversible)
            .into_iter()
            .map(|file| {
                let text = match (file.down, content) {
                    (
                        true,
                        Some(Content {
                            down: Some(down), ..
                        }),
                    ) => down.as_str(),
                    (true, _) => DOWN,
                    (false, Some(content)) => content.up.as_str(),
                    (false, None) => UP,
                };
                (folder.join(file.path), text)
            });
        for (path, text) in files {
            write_new(&path, text)?;
            written.files.push(path);
        }
    }
    if let Some(note) = build_rs_note(root) {
        written.notes.push(note);
    }
    Ok(written)
}

const UP: &str = "-- Write the migration's SQL here.\n";
const DOWN: &str = "-- Write the SQL that reverts it here.\n";

/// `name` as a file name's description: letters, digits and `_`.
fn slug(name: &str) -> Result<String, String> {
    let mut slug = String::new();
    for c in name.trim().chars() {
        match c {
            c if c.is_ascii_alphanumeric() => slug.push(c.to_ascii_lowercase()),
            _ if !slug.ends_with('_') && !slug.is_empty() => slug.push('_'),
            _ => {}
        }
    }
    let slug = slug.trim_end_matches('_').to_owned();
    match slug.is_empty() {
        true => Err(format!(
            "`{name}` holds no letter or digit to name the migration by; say what it does, e.g. \
             `new add_users`"
        )),
        false => Ok(slug),
    }
}

/// The version of the next migration in `folder`, written as the newest
/// neighbour's (`shape`) is: a timestamp of `now` (seconds since 1970) in
/// the same shape (`20260101120000`, diesel's `2026-01-01-120000` and
/// `2026-01-01-120000-0000`), a second later while that is not past
/// `highest` (the highest on disk: two `new` in one second); or the next
/// number after `highest`, zero-padded as the neighbour is; a timestamp
/// when there is no neighbour.
fn next_version(
    folder: &Path,
    shape: Option<&str>,
    now: u64,
    highest: Option<u128>,
) -> Result<String, String> {
    // The text of a timestamp in the shape, and its version digits.
    let stamped = |secs: u64| -> Option<(String, String)> {
        let [y, mo, d, h, mi, s] = civil(secs);
        let digits = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}");
        let parts: Vec<usize> = shape.map_or(vec![14], |s| s.split('-').map(str::len).collect());
        match parts.as_slice() {
            [4, 2, 2, 6] => Some((
                format!("{y:04}-{mo:02}-{d:02}-{h:02}{mi:02}{s:02}"),
                format!("{digits}0000"),
            )),
            [4, 2, 2, 6, 4] => Some((
                format!("{y:04}-{mo:02}-{d:02}-{h:02}{mi:02}{s:02}-0000"),
                format!("{digits}0000"),
            )),
            [14] if shape.is_none_or(|s| s.starts_with(['1', '2'])) => {
                Some((digits.clone(), digits))
            }
            _ => None,
        }
    };
    if stamped(now).is_some() {
        for secs in now..now + 3600 {
            if let Some((text, digits)) = stamped(secs)
                && digits.parse::<u128>().ok() > highest
            {
                return Ok(text);
            }
        }
        return Err(format!(
            "the newest migration in {} is dated more than an hour after this machine's clock; \
             check the clock, or write the file by hand",
            folder.display()
        ));
    }
    match shape.map(str::len) {
        Some(width) if shape.is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit())) => {
            let next = highest.unwrap_or(0) + 1;
            Ok(format!("{next:0width$}"))
        }
        _ => Err(format!(
            "cannot tell how the migrations in {} are numbered (the newest is {}); write the \
             file by hand",
            folder.display(),
            shape.unwrap_or("unnamed")
        )),
    }
}

/// The migration files and folders in `folder`, with their names read as
/// the macro reads them (other files left out).
fn on_disk(folder: &Path) -> Result<Vec<(PathBuf, Named)>, String> {
    let entries = std::fs::read_dir(folder)
        .map_err(|error| format!("cannot read {}: {error}", folder.display()))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if let Some(named) = Named::read(&name, dir) {
            found.push((entry.path(), named));
        }
    }
    Ok(found)
}

/// The highest version among the migration files and folders in `folder`,
/// as the versions of a set compare.
fn highest_on_disk(folder: &Path) -> Result<Option<u128>, String> {
    Ok(on_disk(folder)?
        .into_iter()
        .map(|(_, named)| named.number)
        .max())
}

/// The migration file or folder in `folder` whose description is `slug`
/// (`3_add_orders.sql`, `V3__add_orders.sql`, `2026-…_add_orders/`), if any.
fn named_on_disk(folder: &Path, slug: &str) -> Result<Option<PathBuf>, String> {
    Ok(on_disk(folder)?
        .into_iter()
        .find_map(|(path, named)| named.description.eq_ignore_ascii_case(slug).then_some(path)))
}

/// `path` as the person at the terminal reaches it: relative to the
/// current folder when it is inside it.
pub(crate) fn shown(path: &Path) -> String {
    let relative = std::env::current_dir().ok().and_then(|here| {
        let here = here.canonicalize().ok()?;
        let full = path.canonicalize().ok()?;
        full.strip_prefix(here).ok().map(Path::to_path_buf)
    });
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Create `path` (and its folder) with `text`; never overwrite.
fn write_new(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// What to say when the crate that embeds `migrations` has no `build.rs`
/// that makes cargo rebuild it for a new file.
fn build_rs_note(migrations: &Path) -> Option<String> {
    let krate = migrations
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file())?;
    let build = krate.join("build.rs");
    if crate::embedded::stale::build_rs_reruns(migrations) {
        return None;
    }
    match std::fs::read_to_string(&build) {
        Ok(_) => Some(format!(
            "{} does not call stowage_build::rerun_if_changed: cargo will not rebuild for the \
             new file until another change; add that call",
            build.display()
        )),
        Err(_) => Some(format!(
            "{} has no build.rs: cargo will not rebuild for the new file until another change; \
             add one with `fn main() {{ stowage_build::rerun_if_changed(\"migrations\"); }}` \
             and `stowage-build = \"0.1\"` under [build-dependencies]",
            krate.display()
        )),
    }
}

/// Seconds since 1970, now.
fn utc_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The UTC date and time of `seconds` after 1970 (Howard Hinnant's
/// `civil_from_days`).
fn civil(seconds: u64) -> [u32; 6] {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let small = |v: i64| u32::try_from(v).unwrap_or(0);
    let small_u = |v: u64| u32::try_from(v).unwrap_or(0);
    [
        small(year),
        small(month),
        small(day),
        small_u(rest / 3600),
        small_u(rest % 3600 / 60),
        small_u(rest % 60),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_instants() {
        assert_eq!(civil(0), [1970, 1, 1, 0, 0, 0]);
        // 2000-02-29 12:34:56 UTC, a leap day.
        assert_eq!(civil(951_827_696), [2000, 2, 29, 12, 34, 56]);
        // 2026-11-21 00:00:00 UTC.
        assert_eq!(civil(1_795_219_200), [2026, 11, 21, 0, 0, 0]);
    }

    #[test]
    fn versions_follow_their_neighbours() {
        let folder = Path::new("migrations");
        // 2026-11-21 09:30:05 UTC.
        let now = 1_795_253_405;
        let next = |shape: Option<&str>, highest: Option<u128>| {
            next_version(folder, shape, now, highest).unwrap()
        };
        assert_eq!(next(None, None), "20261121093005");
        assert_eq!(
            next(Some("20260101120000"), Some(20_260_101_120_000)),
            "20261121093005"
        );
        // A second `new` in the same second: one second later.
        assert_eq!(
            next(Some("20260101120000"), Some(20_261_121_093_005)),
            "20261121093006"
        );
        assert_eq!(
            next(Some("2026-01-01-120000"), Some(202_611_210_930_050_000)),
            "2026-11-21-093006"
        );
        assert_eq!(
            next(Some("2026-01-01-120000-0000"), None),
            "2026-11-21-093005-0000"
        );
        assert_eq!(next(Some("0003"), Some(3)), "0004");
        assert_eq!(next(Some("9"), Some(9)), "10");
        assert!(
            next_version(
                folder,
                Some("20990101000000"),
                now,
                Some(20_990_101_000_000)
            )
            .is_err()
        );
    }

    #[test]
    fn names_become_plain_descriptions() {
        assert_eq!(slug("Add users table").unwrap(), "add_users_table");
        assert_eq!(slug("  add-email, index ").unwrap(), "add_email_index");
        assert!(slug(" -- ").is_err());
    }
}
