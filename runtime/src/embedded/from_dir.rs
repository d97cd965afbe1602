//! [`Migrator::from_dir`]: the same model, built at start-up from an
//! [`include_dir::Dir`].

use crate::{Error, MigrationSet, Migrator};
use stowage_layout::{self as layout, Entry};

impl Migrator {
    /// Build a migrator from a folder embedded with the `include_dir` crate.
    ///
    /// The folder is read with the same naming rules as
    /// [`embed_migrations!`](crate::embed_migrations), and checksummed at
    /// start-up instead of at compile time. Prefer `embed_migrations!`, which
    /// reports problems when the crate builds; use this for applications that
    /// already embed the folder with include_dir.
    ///
    /// ```
    /// static DIR: include_dir::Dir<'_> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/migrations/sqlite");
    ///
    /// let migrator = stowage::Migrator::from_dir(&DIR)?;
    /// assert!(!migrator.is_empty());
    /// # Ok::<(), stowage::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSource`] listing every file that breaks the naming rules.
    pub fn from_dir(dir: &include_dir::Dir<'_>) -> Result<Migrator, Error> {
        let entries = entries(dir);
        let sets = layout::classify(&entries).map_err(|problems| Error::InvalidSource {
            problems: problems.iter().map(ToString::to_string).collect(),
        })?;
        Ok(Migrator::owned(
            sets.into_iter().map(MigrationSet::owned).collect(),
        ))
    }
}

fn entries(dir: &include_dir::Dir<'_>) -> Vec<Entry> {
    let name_of = |path: &std::path::Path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .map(str::to_owned)
    };
    let mut entries: Vec<Entry> = dir
        .entries()
        .iter()
        .filter_map(|entry| match entry {
            include_dir::DirEntry::Dir(child) => Some(Entry::Dir {
                name: name_of(child.path())?,
                entries: entries(child),
            }),
            include_dir::DirEntry::File(file) => Some(Entry::File {
                name: name_of(file.path())?,
                bytes: file.contents().to_vec(),
            }),
        })
        .filter(|entry| !entry.name().starts_with('.'))
        .collect();
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    entries
}
