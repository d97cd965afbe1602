//! Detecting a binary built before a migration file was added or removed.
//!
//! Editing an embedded file rebuilds the crate (`include_str!` tracks it), but
//! stable Rust offers a proc macro no way to track a folder, so a new file goes
//! unseen until something else triggers a rebuild. `stowage_build::rerun_if_changed`
//! fixes that in `build.rs`; this module warns when it was forgotten.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// The folder a migrator was embedded from and the files it held then.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// Canonical path of the folder; only kept in debug builds.
    dir: Option<&'static str>,
    /// Every file read, relative to `dir`, sorted.
    files: &'static [&'static str],
}

impl Source {
    /// Built by `embed_migrations!`.
    pub const fn embedded(dir: Option<&'static str>, files: &'static [&'static str]) -> Self {
        Source { dir, files }
    }

    /// The folder's canonical path, in a debug build.
    #[cfg(any(feature = "cli", feature = "testing"))]
    pub(crate) fn dir(&self) -> Option<&'static str> {
        self.dir
    }

    pub(crate) fn stale_files(&self) -> Vec<String> {
        let Some(dir) = self.dir else {
            return Vec::new();
        };
        let root = Path::new(dir);
        if !root.is_dir() {
            // Not on the build machine: nothing to compare with.
            return Vec::new();
        }
        let mut on_disk = Vec::new();
        list_files(root, "", &mut on_disk);
        let embedded: HashSet<&str> = self.files.iter().copied().collect();
        let on_disk_set: HashSet<&str> = on_disk.iter().map(String::as_str).collect();
        let mut stale: Vec<String> = on_disk
            .iter()
            .filter(|file| !embedded.contains(file.as_str()))
            .cloned()
            .chain(
                self.files
                    .iter()
                    .filter(|file| !on_disk_set.contains(**file))
                    .map(|file| (*file).to_owned()),
            )
            .collect();
        stale.sort();
        stale
    }

    /// Print a warning, once per folder and process, when the binary is stale.
    pub(crate) fn warn_if_stale(&self) {
        let Some(dir) = self.dir else { return };
        static WARNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
        let first = WARNED
            .get_or_init(Default::default)
            .lock()
            .map(|mut seen| seen.insert(dir))
            .unwrap_or(false);
        if !first {
            return;
        }
        let stale = self.stale_files();
        if stale.is_empty() {
            return;
        }
        let advice = match build_rs_reruns(Path::new(dir)) {
            true => {
                "Rebuild it (`cargo build`): the crate's build.rs reruns for the folder, so \
                     the next build embeds what changed."
            }
            false => {
                "Rebuild it (`touch` the crate's src/main.rs or lib.rs), and add \
                      `stowage_build::rerun_if_changed(\"migrations\")` to build.rs (with \
                      `stowage-build = \"0.1\"` under [build-dependencies]) so cargo rebuilds by \
                      itself."
            }
        };
        let message = format!(
            "stowage: this binary is stale: the migrations folder {dir} has changed since it was \
             built ({}). {advice}",
            stale.join(", ")
        );
        tracing::warn!(folder = dir, files = ?stale, "{message}");
        eprintln!("warning: {message}");
    }
}

/// Whether the crate that embeds `migrations` (the nearest folder above it
/// with a `Cargo.toml`) has a `build.rs` that reruns for new files.
pub(crate) fn build_rs_reruns(migrations: &Path) -> bool {
    migrations
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file())
        .and_then(|krate| std::fs::read_to_string(krate.join("build.rs")).ok())
        .is_some_and(|text| text.contains("rerun_if_changed") || text.contains("rerun-if-changed"))
}

fn list_files(dir: &Path, prefix: &str, files: &mut Vec<String>) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for item in listing.flatten() {
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = item.path();
        if path.is_dir() {
            list_files(&path, &format!("{prefix}{name}/"), files);
        } else {
            files.push(format!("{prefix}{name}"));
        }
    }
}
