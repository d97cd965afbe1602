//! [`Migration`], [`MigrationSet`] and [`Head`].

use crate::{Dialect, Event};
use std::borrow::Cow;

/// One migration: its version, SQL and checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    description: Cow<'static, str>,
    source_path: Cow<'static, str>,
    up_sql: Cow<'static, str>,
    /// The down SQL's file and its SQL.
    down: Option<(Cow<'static, str>, Cow<'static, str>)>,
    checksum: [u8; 32],
    chain: [u8; 32],
    no_transaction: bool,
    compatible: bool,
}

impl Migration {
    /// Built by `embed_migrations!`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn embedded(
        version: i64,
        description: &'static str,
        source_path: &'static str,
        up_sql: &'static str,
        down: Option<(&'static str, &'static str)>,
        checksum: [u8; 32],
        chain: [u8; 32],
        no_transaction: bool,
        compatible: bool,
    ) -> Self {
        Migration {
            version,
            description: Cow::Borrowed(description),
            source_path: Cow::Borrowed(source_path),
            up_sql: Cow::Borrowed(up_sql),
            down: match down {
                Some((path, sql)) => Some((Cow::Borrowed(path), Cow::Borrowed(sql))),
                None => None,
            },
            checksum,
            chain,
            no_transaction,
            compatible,
        }
    }

    #[cfg(any(feature = "include_dir", feature = "any"))]
    pub(crate) fn owned(parsed: stowage_layout::Parsed) -> Self {
        Migration {
            version: parsed.version,
            description: Cow::Owned(parsed.description),
            source_path: Cow::Owned(parsed.source),
            up_sql: Cow::Owned(parsed.up.text),
            down: parsed
                .down
                .map(|down| (Cow::Owned(down.path), Cow::Owned(down.text))),
            checksum: parsed.checksum,
            chain: parsed.chain,
            no_transaction: parsed.no_transaction,
            compatible: parsed.compatible,
        }
    }

    /// A migration this binary lacks, as its history row keeps it: only its
    /// down SQL (from `down_path` in the binary that applied it) can run.
    pub(crate) fn stored(
        version: i64,
        description: String,
        down_path: String,
        down_sql: String,
        no_transaction: bool,
    ) -> Self {
        Migration {
            version,
            description: Cow::Owned(description),
            source_path: Cow::Owned(down_path.clone()),
            up_sql: Cow::Borrowed(""),
            down: Some((Cow::Owned(down_path), Cow::Owned(down_sql))),
            checksum: [0; 32],
            chain: [0; 32],
            no_transaction,
            compatible: false,
        }
    }

    /// The version: the leading number of the file name (for diesel folders,
    /// the digits of the timestamp). A repeatable migration has none: its
    /// version is the negative key it is recorded under, derived from its
    /// description.
    pub const fn version(&self) -> i64 {
        self.version
    }

    /// Whether this is a repeatable migration (`R__<name>.sql`), applied
    /// after the versioned ones whenever its checksum changed.
    pub const fn is_repeatable(&self) -> bool {
        self.version < 0
    }

    /// The same migration running `up` and `down` instead of its SQL (its
    /// placeholders replaced), with the checksum of the SQL as written.
    pub(crate) fn with_sql(&self, up: String, down: Option<String>) -> Migration {
        Migration {
            up_sql: Cow::Owned(up),
            down: self
                .down
                .as_ref()
                .zip(down)
                .map(|((path, _), sql)| (path.clone(), Cow::Owned(sql))),
            ..self.clone()
        }
    }

    /// The description: the rest of the name, with `_` turned into spaces.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The SQL that applies the migration, normalised (no BOM, LF line ends).
    pub fn up_sql(&self) -> &str {
        &self.up_sql
    }

    /// The SQL that reverts the migration, for reversible layouts.
    pub fn down_sql(&self) -> Option<&str> {
        self.down.as_ref().map(|(_, sql)| &**sql)
    }

    /// The file of the down SQL, relative to the migrations folder (a
    /// `.down.sql`, diesel's `down.sql`, Flyway's `U<version>__…`), when it
    /// has one.
    pub fn down_path(&self) -> Option<&str> {
        self.down.as_ref().map(|(path, _)| &**path)
    }

    /// SHA-256 of [`up_sql`](Self::up_sql).
    pub const fn checksum(&self) -> &[u8; 32] {
        &self.checksum
    }

    /// The chain value up to and including this migration: it vouches for the
    /// version and checksum of this migration and of every one before it.
    pub const fn chain(&self) -> &[u8; 32] {
        &self.chain
    }

    /// Whether the migration must run outside a transaction
    /// (`-- stowage:no-transaction`, `-- no-transaction`, or diesel's
    /// `run_in_transaction = false`).
    pub const fn no_transaction(&self) -> bool {
        self.no_transaction
    }

    /// Whether binaries without this migration still work against the
    /// schema it makes (`-- stowage:compatible` in its leading comments: an
    /// added table, a nullable column, an index). A binary that lacks only
    /// such migrations starts on a database that has them.
    pub const fn compatible(&self) -> bool {
        self.compatible
    }

    /// Where the migration came from, relative to the migrations folder: its
    /// `.sql` file, the `.up.sql` of a reversible pair, or its diesel folder.
    pub fn source_path(&self) -> &str {
        &self.source_path
    }
}

/// The newest migration of a set: its version and chain value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Head {
    /// The newest version.
    pub version: i64,
    /// The chain value of the newest version.
    pub chain: [u8; 32],
}

/// A callback file (`beforeMigrate.sql`, `afterEachMigrate__audit.sql`, …):
/// SQL run on the migration connection at its [`Event`] of a run that has
/// work to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackFile {
    event: Event,
    path: Cow<'static, str>,
    sql: Cow<'static, str>,
}

impl CallbackFile {
    /// Built by `embed_migrations!`.
    #[doc(hidden)]
    pub const fn embedded(event: Event, path: &'static str, sql: &'static str) -> Self {
        CallbackFile {
            event,
            path: Cow::Borrowed(path),
            sql: Cow::Borrowed(sql),
        }
    }

    #[cfg(any(feature = "include_dir", feature = "any"))]
    pub(crate) fn owned(callback: stowage_layout::Callback) -> Self {
        CallbackFile {
            event: callback.event,
            path: Cow::Owned(callback.file.path),
            sql: Cow::Owned(callback.file.text),
        }
    }

    /// When it runs.
    pub const fn event(&self) -> Event {
        self.event
    }

    /// Its path, relative to the migrations folder.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its SQL, normalised (no BOM, LF line ends).
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// The migrations of one dialect, sorted by version, with its repeatable
/// migrations and callback files.
///
/// A folder without dialect subfolders gives one set whose
/// [`dialect`](Self::dialect) is `None`: it serves every dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSet {
    dialect: Option<Dialect>,
    migrations: Cow<'static, [Migration]>,
    repeatables: Cow<'static, [Migration]>,
    callbacks: Cow<'static, [CallbackFile]>,
}

impl MigrationSet {
    /// Built by `embed_migrations!`.
    #[doc(hidden)]
    pub const fn embedded(
        dialect: Option<Dialect>,
        migrations: &'static [Migration],
        repeatables: &'static [Migration],
        callbacks: &'static [CallbackFile],
    ) -> Self {
        MigrationSet {
            dialect,
            migrations: Cow::Borrowed(migrations),
            repeatables: Cow::Borrowed(repeatables),
            callbacks: Cow::Borrowed(callbacks),
        }
    }

    #[cfg(any(feature = "include_dir", feature = "any"))]
    pub(crate) fn owned(set: stowage_layout::Set) -> Self {
        let owned = |list: Vec<stowage_layout::Parsed>| {
            Cow::Owned(list.into_iter().map(Migration::owned).collect())
        };
        MigrationSet {
            dialect: set.dialect,
            migrations: owned(set.migrations),
            repeatables: owned(set.repeatables),
            callbacks: Cow::Owned(set.callbacks.into_iter().map(CallbackFile::owned).collect()),
        }
    }

    /// The repeatable migrations (`R__<name>.sql`), in the order they are
    /// applied: by description.
    pub fn repeatables(&self) -> &[Migration] {
        &self.repeatables
    }

    /// The callback files of `event`, in the order they run: by path.
    pub fn callbacks(&self, event: Event) -> impl Iterator<Item = &CallbackFile> {
        self.callbacks.iter().filter(move |c| c.event == event)
    }

    /// A value that changes whenever anything a run would do changes: the
    /// head's chain, then each repeatable migration's and callback's checksum.
    #[cfg(feature = "testing")]
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        let mut value = self.head().map_or([0; 32], |head| head.chain);
        for repeatable in self.repeatables.iter() {
            value = stowage_layout::chain_next(&value, repeatable.version, &repeatable.checksum);
        }
        for callback in self.callbacks.iter() {
            let checksum = stowage_layout::checksum(&callback.sql);
            value = stowage_layout::chain_next(&value, 0, &checksum);
        }
        value
    }

    /// The dialect this set is for, or `None` when it serves every dialect.
    pub const fn dialect(&self) -> Option<Dialect> {
        self.dialect
    }

    /// The migrations, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.migrations.iter()
    }

    /// How many migrations the set holds.
    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    /// Whether the set holds no migration.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    /// The newest migration's version and chain, or `None` for an empty set.
    pub fn head(&self) -> Option<Head> {
        self.migrations.last().map(|m| Head {
            version: m.version,
            chain: m.chain,
        })
    }

    /// The migration with this version.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .and_then(|index| self.migrations.get(index))
    }
}

impl<'a> IntoIterator for &'a MigrationSet {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
