//! [`Migration`], [`MigrationSet`] and [`Head`].

use crate::Dialect;
use std::borrow::Cow;

/// One migration: its version, SQL and checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    description: Cow<'static, str>,
    source_path: Cow<'static, str>,
    up_sql: Cow<'static, str>,
    down_sql: Option<Cow<'static, str>>,
    checksum: [u8; 32],
    chain: [u8; 32],
    no_transaction: bool,
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
        down_sql: Option<&'static str>,
        checksum: [u8; 32],
        chain: [u8; 32],
        no_transaction: bool,
    ) -> Self {
        Migration {
            version,
            description: Cow::Borrowed(description),
            source_path: Cow::Borrowed(source_path),
            up_sql: Cow::Borrowed(up_sql),
            down_sql: match down_sql {
                Some(sql) => Some(Cow::Borrowed(sql)),
                None => None,
            },
            checksum,
            chain,
            no_transaction,
        }
    }

    #[cfg(feature = "include_dir")]
    pub(crate) fn owned(parsed: stowage_layout::Parsed) -> Self {
        Migration {
            version: parsed.version,
            description: Cow::Owned(parsed.description),
            source_path: Cow::Owned(parsed.source),
            up_sql: Cow::Owned(parsed.up.text),
            down_sql: parsed.down.map(|down| Cow::Owned(down.text)),
            checksum: parsed.checksum,
            chain: parsed.chain,
            no_transaction: parsed.no_transaction,
        }
    }

    /// The version: the leading number of the file name (for diesel folders,
    /// the digits of the timestamp).
    pub const fn version(&self) -> i64 {
        self.version
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
        self.down_sql.as_deref()
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

/// The migrations of one dialect, sorted by version.
///
/// A folder without dialect subfolders gives one set whose
/// [`dialect`](Self::dialect) is `None`: it serves every dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSet {
    dialect: Option<Dialect>,
    migrations: Cow<'static, [Migration]>,
}

impl MigrationSet {
    /// Built by `embed_migrations!`.
    #[doc(hidden)]
    pub const fn embedded(dialect: Option<Dialect>, migrations: &'static [Migration]) -> Self {
        MigrationSet {
            dialect,
            migrations: Cow::Borrowed(migrations),
        }
    }

    #[cfg(feature = "include_dir")]
    pub(crate) fn owned(dialect: Option<Dialect>, migrations: Vec<Migration>) -> Self {
        MigrationSet {
            dialect,
            migrations: Cow::Owned(migrations),
        }
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
