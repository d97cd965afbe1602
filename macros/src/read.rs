//! The filesystem pass: find the migrations folder and read it into [`Entry`] values.

use std::fs;
use std::path::{Path, PathBuf};
use stowage_layout::Entry;

/// The folder `embed_migrations!` reads when it is given no path.
pub const DEFAULT_DIR: &str = "migrations";

/// Resolve the macro's argument against the crate's manifest folder.
///
/// `manifest_dir` is `CARGO_MANIFEST_DIR`, passed in so the rule can be tested.
pub fn resolve_dir(raw: &str, manifest_dir: Option<&str>) -> Result<PathBuf, String> {
    if Path::new(raw).is_absolute() {
        return Err(format!(
            "`{raw}` is an absolute path; give a path relative to the crate's Cargo.toml \
             (such as \"migrations\") so the crate builds on every machine"
        ));
    }
    if raw.is_empty() {
        return Err(
            "the migrations path is empty; give a folder such as \"migrations\"".to_owned(),
        );
    }
    let manifest_dir = manifest_dir
        .ok_or_else(|| "CARGO_MANIFEST_DIR is not set; build the crate with cargo".to_owned())?;
    Ok(Path::new(manifest_dir).join(raw))
}

/// The migrations folder, read.
#[derive(Debug)]
pub struct Folder {
    /// Canonical absolute path of the folder.
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// Every file read, relative to `root`, `/`-separated, sorted.
    pub files: Vec<String>,
}

/// Read a folder and everything below it, skipping hidden entries.
pub fn read_folder(shown: &str, dir: &Path) -> Result<Folder, String> {
    let root = fs::canonicalize(dir).map_err(|error| {
        format!(
            "cannot read the migrations folder `{shown}` ({error}); \
             create it, or pass the right path to `embed_migrations!(\"...\")`"
        )
    })?;
    if !root.is_dir() {
        return Err(format!(
            "`{shown}` is not a folder; pass the folder that holds the migrations"
        ));
    }
    let mut files = Vec::new();
    let entries = read_entries(shown, &root, "", &mut files)?;
    files.sort();
    Ok(Folder {
        root,
        entries,
        files,
    })
}

fn read_entries(
    shown: &str,
    dir: &Path,
    prefix: &str,
    files: &mut Vec<String>,
) -> Result<Vec<Entry>, String> {
    let unreadable = |path: &Path, error: std::io::Error| {
        format!(
            "cannot read `{shown}/{}` ({error}); check its permissions",
            path.display()
        )
    };
    let mut entries = Vec::new();
    let listing = fs::read_dir(dir).map_err(|error| unreadable(Path::new(prefix), error))?;
    for item in listing {
        let item = item.map_err(|error| unreadable(Path::new(prefix), error))?;
        let Ok(name) = item.file_name().into_string() else {
            // A name that is not UTF-8 cannot be a migration name either.
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let path = item.path();
        if path.is_dir() {
            let children = read_entries(shown, &path, &format!("{relative}/"), files)?;
            entries.push(Entry::Dir {
                name,
                entries: children,
            });
        } else {
            let bytes = fs::read(&path).map_err(|error| unreadable(Path::new(&relative), error))?;
            files.push(relative);
            entries.push(Entry::File { name, bytes });
        }
    }
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_paths_only() {
        assert_eq!(
            resolve_dir("migrations", Some("/app")),
            Ok(PathBuf::from("/app/migrations"))
        );
        assert_eq!(
            resolve_dir("db/sql", Some("/app")),
            Ok(PathBuf::from("/app/db/sql"))
        );
        assert!(
            resolve_dir("/etc/migrations", Some("/app"))
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            resolve_dir("migrations", None)
                .unwrap_err()
                .contains("CARGO_MANIFEST_DIR")
        );
        assert!(resolve_dir("", Some("/app")).is_err());
    }
}
