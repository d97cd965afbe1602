//! The naming rules, validation and checksums of a migrations folder, shared
//! by `stowage-macros` (at compile time, for `embed_migrations!`) and
//! `stowage` (at start-up, for `Migrator::from_dir`), so the two can never
//! disagree on what a folder means.
//!
//! Depend on `stowage`, which re-exports what users need ([`Dialect`]); this
//! crate's API follows stowage's needs and is not stable on its own.
//!
//! It knows nothing of the filesystem or of tokens: [`classify`] takes a tree
//! of [`Entry`] values and returns the typed model ([`Set`], [`Parsed`]), or
//! every [`Problem`] it found.

mod checksum;
mod classify;
mod dialect;
mod layout;
mod names;

pub use checksum::{chain_next, chain_seed, checksum, normalise, repeatable_key};
pub use classify::classify;
pub use dialect::Dialect;
pub use layout::{Layout, Named, NewFile};
pub use names::{Event, diesel_version};

/// A file or folder read from a migrations folder.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A file and its raw bytes.
    File {
        /// The file's name.
        name: String,
        /// Its contents.
        bytes: Vec<u8>,
    },
    /// A folder and its entries.
    Dir {
        /// The folder's name.
        name: String,
        /// What it holds.
        entries: Vec<Entry>,
    },
}

impl Entry {
    /// The file's or folder's name.
    pub fn name(&self) -> &str {
        match self {
            Entry::File { name, .. } | Entry::Dir { name, .. } => name,
        }
    }
}

/// Something wrong with a migrations folder, naming the file it is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The path of the file or folder, relative to the migrations folder.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The migrations of one dialect (or of every dialect, when `dialect` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// The dialect of its folder in a multi-dialect set, or `None` for a
    /// folder without dialect subfolders.
    pub dialect: Option<Dialect>,
    /// Sorted by version, with checksums and chain filled in.
    pub migrations: Vec<Parsed>,
    /// The repeatable migrations (`R__<name>.sql`), sorted by description;
    /// their `version` is [`repeatable_key`], their `chain` their checksum.
    pub repeatables: Vec<Parsed>,
    /// The callback files, sorted by event, then path.
    pub callbacks: Vec<Callback>,
}

/// A callback file: SQL run at an [`Event`] of a run that has work to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// When it runs.
    pub event: Event,
    /// The file.
    pub file: SqlFile,
}

/// One migration, validated and checksummed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The version: the leading number of the name.
    pub version: i64,
    /// The rest of the name, with `_` as spaces.
    pub description: String,
    /// Where the migration comes from, relative to the migrations folder: the
    /// `.sql` file, the `.up.sql` file of a reversible pair, or a diesel folder.
    pub source: String,
    /// The SQL that applies it.
    pub up: SqlFile,
    /// The SQL that reverts it, for reversible layouts.
    pub down: Option<SqlFile>,
    /// Whether it must run outside a transaction.
    pub no_transaction: bool,
    /// Whether binaries without it still work against the schema it makes
    /// (`-- stowage:compatible`).
    pub compatible: bool,
    /// SHA-256 of the normalised up SQL.
    pub checksum: [u8; 32],
    /// The chain value up to and including this migration.
    pub chain: [u8; 32],
}

/// A SQL file of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFile {
    /// Relative to the migrations folder, `/`-separated.
    pub path: String,
    /// The normalised text: BOM removed, CRLF and lone CR turned into LF.
    pub text: String,
    /// Whether `text` differs from the bytes on disk.
    pub normalised: bool,
}
