//! [`Migrator`]: the embedded migrations of an application.

use crate::migration::{Dialect, Head, Migration, MigrationSet};
use crate::stale::Source;
use std::borrow::Cow;

/// The migrations embedded in the binary, one [`MigrationSet`] per dialect.
///
/// Build one with [`embed_migrations!`](crate::embed_migrations) in a `static`:
///
/// ```
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../migrations/sqlite");
///
/// assert!(MIGRATOR.len() > 0);
/// let head = MIGRATOR.head().unwrap();
/// assert_eq!(head.version, MIGRATOR.iter().last().unwrap().version());
/// ```
#[derive(Debug, Clone)]
pub struct Migrator {
    sets: Cow<'static, [MigrationSet]>,
    source: Source,
}

impl Migrator {
    /// Built by `embed_migrations!`.
    #[doc(hidden)]
    pub const fn embedded(sets: &'static [MigrationSet], source: Source) -> Self {
        Migrator {
            sets: Cow::Borrowed(sets),
            source,
        }
    }

    #[cfg(feature = "include_dir")]
    pub(crate) fn owned(sets: Vec<MigrationSet>) -> Self {
        Migrator {
            sets: Cow::Owned(sets),
            source: Source::embedded(None, &[]),
        }
    }

    /// Every set: one for a plain folder, one per dialect subfolder otherwise.
    pub fn sets(&self) -> &[MigrationSet] {
        self.source.warn_if_stale();
        &self.sets
    }

    /// The set that serves `dialect`: its own subfolder's, or the set of a
    /// folder without dialect subfolders. `None` when the folder has dialect
    /// subfolders but none for `dialect`.
    pub fn set(&self, dialect: Dialect) -> Option<&MigrationSet> {
        self.sets()
            .iter()
            .find(|set| set.dialect() == Some(dialect))
            .or_else(|| self.sets.iter().find(|set| set.dialect().is_none()))
    }

    /// Every embedded migration: for a multi-dialect folder, the `postgres/`
    /// set, then `mysql/`, then `sqlite/`, each oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.sets().iter().flat_map(MigrationSet::iter)
    }

    /// How many migrations are embedded, over every dialect.
    pub fn len(&self) -> usize {
        self.sets().iter().map(MigrationSet::len).sum()
    }

    /// Whether no migration is embedded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest migration's version and chain. `None` when nothing is
    /// embedded, and for a multi-dialect folder, whose sets each have their
    /// own head: use [`set`](Self::set)`(dialect)?.head()` there.
    pub fn head(&self) -> Option<Head> {
        match self.sets() {
            [only] => only.head(),
            _ => None,
        }
    }

    /// The files that `embed_migrations!` did not see but that are now in
    /// the migrations folder, or that it saw and are gone: the binary is stale.
    ///
    /// Only debug builds keep the folder's path; release builds always
    /// return an empty list. Debug builds also print a warning about them the
    /// first time the migrator is used. Add
    /// [`stowage::build::rerun_if_changed`](crate::build::rerun_if_changed)
    /// to `build.rs` so that cargo rebuilds when a file is added.
    pub fn stale_files(&self) -> Vec<String> {
        self.source.stale_files()
    }
}
