//! The naming rules, validation and checksums of a migrations folder.
//!
//! This one file is compiled into both `stowage-macros` (at compile time, for
//! `embed_migrations!`) and `stowage` (at start-up, for `Migrator::from_dir`),
//! so the two can never disagree on what a folder means. It knows nothing of
//! the filesystem or of tokens: it takes a tree of [`Entry`] values and returns
//! the typed model, or every [`Problem`] it found.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A file or folder read from a migrations folder.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A file and its raw bytes.
    File { name: String, bytes: Vec<u8> },
    /// A folder and its entries.
    Dir { name: String, entries: Vec<Entry> },
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

/// The folder names of a multi-dialect set, in the order sets are emitted.
pub const DIALECT_DIRS: [&str; 3] = ["postgres", "mysql", "sqlite"];

/// The migrations of one dialect (or of every dialect, when `dialect` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// One of [`DIALECT_DIRS`], or `None` for a folder without dialect subfolders.
    pub dialect: Option<&'static str>,
    /// Sorted by version, with checksums and chain filled in.
    pub migrations: Vec<Parsed>,
}

/// One migration, validated and checksummed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub version: i64,
    pub description: String,
    /// Where the migration comes from, relative to the migrations folder: the
    /// `.sql` file, the `.up.sql` file of a reversible pair, or a diesel folder.
    pub source: String,
    pub up: SqlFile,
    pub down: Option<SqlFile>,
    pub no_transaction: bool,
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

/// The value the chain starts from.
pub fn chain_seed() -> [u8; 32] {
    Sha256::digest(b"stowage-chain-v1").into()
}

/// `sha256(previous ‖ version as 8 bytes big-endian ‖ checksum)`.
pub fn chain_next(previous: &[u8; 32], version: i64, checksum: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(version.to_be_bytes());
    hasher.update(checksum);
    hasher.finalize().into()
}

/// SHA-256 of a normalised text.
pub fn checksum(normalised: &str) -> [u8; 32] {
    Sha256::digest(normalised.as_bytes()).into()
}

/// Remove a UTF-8 BOM and turn CRLF and lone CR into LF.
pub fn normalise(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Turn a folder's entries into its migration sets, or say everything wrong with it.
pub fn classify(entries: &[Entry]) -> Result<Vec<Set>, Vec<Problem>> {
    let mut problems = Vec::new();
    let dialect_dirs: Vec<(&'static str, &[Entry])> = DIALECT_DIRS
        .iter()
        .filter_map(|dialect| {
            entries.iter().find_map(|entry| match entry {
                Entry::Dir { name, entries } if name == dialect => Some((*dialect, &entries[..])),
                _ => None,
            })
        })
        .collect();

    let sets = if dialect_dirs.is_empty() {
        vec![collect_set(None, "", entries, &mut problems)]
    } else {
        for entry in entries {
            let name = entry_name(entry);
            let is_dialect = matches!(entry, Entry::Dir { .. }) && DIALECT_DIRS.contains(&name);
            if !is_dialect && looks_like_migration(entry) {
                problems.push(Problem {
                    path: name.to_owned(),
                    message: format!(
                        "this folder has dialect subfolders ({}), so migrations must live inside them; \
                         move `{name}` into each dialect folder that needs it",
                        dialect_dirs.iter().map(|(d, _)| *d).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        dialect_dirs
            .into_iter()
            .map(|(dialect, children)| {
                collect_set(
                    Some(dialect),
                    &format!("{dialect}/"),
                    children,
                    &mut problems,
                )
            })
            .collect()
    };

    if problems.is_empty() {
        Ok(sets)
    } else {
        problems.sort();
        problems.dedup();
        Err(problems)
    }
}

fn entry_name(entry: &Entry) -> &str {
    match entry {
        Entry::File { name, .. } | Entry::Dir { name, .. } => name,
    }
}

fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
}

/// Whether an entry would be read as (part of) a migration in a flat folder.
fn looks_like_migration(entry: &Entry) -> bool {
    match entry {
        Entry::File { name, .. } => !is_ignored(name) && name.ends_with(".sql"),
        Entry::Dir { name, entries } => {
            !is_ignored(name)
                && (parse_diesel_dir_name(name).is_some()
                    || entries.iter().any(looks_like_migration))
        }
    }
}

/// A migration file or folder before pairing, version checks and hashing.
struct Candidate {
    version: i64,
    description: String,
    kind: Kind,
    path: String,
    text: String,
    normalised: bool,
    no_transaction: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Simple,
    Up,
    Down,
    Diesel,
}

fn collect_set(
    dialect: Option<&'static str>,
    prefix: &str,
    entries: &[Entry],
    problems: &mut Vec<Problem>,
) -> Set {
    let mut candidates = Vec::new();
    // Down SQL of diesel folders, keyed by the index of their candidate.
    let mut diesel_downs = BTreeMap::new();
    for entry in entries {
        match entry {
            Entry::File { name, .. } if is_ignored(name) || !name.ends_with(".sql") => {}
            Entry::File { name, bytes } => {
                let path = format!("{prefix}{name}");
                let Some(text) = read_text(&path, bytes, problems) else {
                    continue;
                };
                match parse_file_name(name) {
                    Ok((version, description, kind)) => candidates.push(Candidate {
                        version,
                        description,
                        kind,
                        path,
                        no_transaction: false,
                        normalised: text.1,
                        text: text.0,
                    }),
                    Err(message) => problems.push(Problem { path, message }),
                }
            }
            Entry::Dir { name, .. } if is_ignored(name) => {}
            Entry::Dir { name, entries } => {
                let path = format!("{prefix}{name}");
                match parse_diesel_dir_name(name) {
                    Some(parsed) => {
                        if let Some((candidate, down)) =
                            diesel_migration(&path, parsed, entries, problems)
                        {
                            if let Some(down) = down {
                                diesel_downs.insert(candidates.len(), down);
                            }
                            candidates.push(candidate);
                        }
                    }
                    None if entries.iter().any(looks_like_migration) => problems.push(Problem {
                        path,
                        message: "this folder holds SQL but its name is not a diesel migration \
                                  (`yyyy-mm-dd-hhmmss_name`, or `yyyy-mm-dd-hhmmss-nnnn_name`); \
                                  rename it or move its files out"
                            .to_owned(),
                    }),
                    None => {}
                }
            }
        }
    }

    for candidate in &mut candidates {
        if matches!(candidate.kind, Kind::Simple | Kind::Up | Kind::Diesel) {
            match directives(&candidate.text) {
                Ok(no_tx) => candidate.no_transaction |= no_tx,
                Err(message) => problems.push(Problem {
                    path: candidate.path.clone(),
                    message,
                }),
            }
            if is_blank(&candidate.text) {
                problems.push(Problem {
                    path: candidate.path.clone(),
                    message: "the migration is empty (only white space and comments); \
                              write its SQL or delete the file"
                        .to_owned(),
                });
            }
        }
    }

    let mut by_version: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (index, candidate) in candidates.iter().enumerate() {
        by_version.entry(candidate.version).or_default().push(index);
    }

    let mut migrations = Vec::new();
    let mut chain = chain_seed();
    for (version, indices) in by_version {
        let ups: Vec<&Candidate> = indices
            .iter()
            .map(|&i| &candidates[i])
            .filter(|c| c.kind != Kind::Down)
            .collect();
        let downs: Vec<&Candidate> = indices
            .iter()
            .map(|&i| &candidates[i])
            .filter(|c| c.kind == Kind::Down)
            .collect();
        if ups.len() > 1 || downs.len() > 1 {
            let mut paths: Vec<&str> = indices
                .iter()
                .map(|&i| candidates[i].path.as_str())
                .collect();
            paths.sort_unstable();
            for path in &paths {
                let others: Vec<&str> = paths.iter().copied().filter(|p| p != path).collect();
                problems.push(Problem {
                    path: (*path).to_owned(),
                    message: format!(
                        "version {version} is used more than once (also by {}); \
                         give each migration its own version",
                        others.join(", ")
                    ),
                });
            }
            continue;
        }
        match (ups.first(), downs.first()) {
            (None, Some(down)) => problems.push(Problem {
                path: down.path.clone(),
                message: format!(
                    "this down migration has no up migration; add `{}` or remove it",
                    down.path.replace(".down.sql", ".up.sql")
                ),
            }),
            (Some(up), None) if up.kind == Kind::Up => problems.push(Problem {
                path: up.path.clone(),
                message: format!(
                    "this up migration has no down migration; add `{}`, or rename it to `{}` \
                     if it cannot be undone",
                    up.path.replace(".up.sql", ".down.sql"),
                    up.path.replace(".up.sql", ".sql")
                ),
            }),
            (Some(up), down) => {
                if let Some(down) = down
                    && (up.kind != Kind::Up || down.description != up.description)
                {
                    problems.push(Problem {
                        path: down.path.clone(),
                        message: format!(
                            "version {version} is used more than once (also by {}); \
                             a down migration must have the same name as its `.up.sql`",
                            up.path
                        ),
                    });
                    continue;
                }
                let up_index = indices
                    .iter()
                    .copied()
                    .find(|&i| candidates[i].kind != Kind::Down);
                let down_file = match down {
                    Some(down) => Some(SqlFile {
                        path: down.path.clone(),
                        text: down.text.clone(),
                        normalised: down.normalised,
                    }),
                    None => up_index.and_then(|i| diesel_downs.remove(&i)),
                };
                let checksum = checksum(&up.text);
                chain = chain_next(&chain, version, &checksum);
                migrations.push(Parsed {
                    version,
                    description: up.description.clone(),
                    source: up.path.clone(),
                    up: SqlFile {
                        path: if up.kind == Kind::Diesel {
                            format!("{}/up.sql", up.path)
                        } else {
                            up.path.clone()
                        },
                        text: up.text.clone(),
                        normalised: up.normalised,
                    },
                    down: down_file,
                    no_transaction: up.no_transaction,
                    checksum,
                    chain,
                });
            }
            (None, None) => {}
        }
    }
    Set {
        dialect,
        migrations,
    }
}

/// Decode a file as UTF-8 and normalise it; `(text, changed)`.
fn read_text(path: &str, bytes: &[u8], problems: &mut Vec<Problem>) -> Option<(String, bool)> {
    match std::str::from_utf8(bytes) {
        Ok(raw) => {
            let text = normalise(raw);
            let changed = text != raw;
            Some((text, changed))
        }
        Err(error) => {
            problems.push(Problem {
                path: path.to_owned(),
                message: format!(
                    "the file is not valid UTF-8 (invalid byte at offset {}); save it as UTF-8",
                    error.valid_up_to()
                ),
            });
            None
        }
    }
}

fn parse_version(digits: &str) -> Result<i64, String> {
    digits.parse::<i64>().map_err(|_| {
        format!(
            "version {digits} does not fit in a 64-bit signed integer (at most {}); use a shorter version",
            i64::MAX
        )
    })
}

fn describe(raw: &str) -> String {
    raw.replace('_', " ")
}

fn leading_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// Parse a migration file name: `(version, description, kind)`.
fn parse_file_name(name: &str) -> Result<(i64, String, Kind), String> {
    let no_layout = || {
        format!(
            "`{name}` matches no migration layout; name it `<version>_<description>.sql`, \
             `<version>_<description>.up.sql` + `.down.sql`, or `V<version>__<description>.sql`"
        )
    };
    let stem = name.strip_suffix(".sql").ok_or_else(no_layout)?;
    if let Some(rest) = stem.strip_prefix('V') {
        let (digits, rest) = leading_digits(rest);
        let description = rest.strip_prefix("__").filter(|d| !d.is_empty());
        return match (digits.is_empty(), description) {
            (false, Some(description)) => {
                Ok((parse_version(digits)?, describe(description), Kind::Simple))
            }
            _ => Err(no_layout()),
        };
    }
    let (digits, rest) = leading_digits(stem);
    let Some(rest) = rest.strip_prefix('_').filter(|_| !digits.is_empty()) else {
        return Err(no_layout());
    };
    let (description, kind) = if let Some(d) = rest.strip_suffix(".up") {
        (d, Kind::Up)
    } else if let Some(d) = rest.strip_suffix(".down") {
        (d, Kind::Down)
    } else {
        (rest, Kind::Simple)
    };
    if description.is_empty() || description.contains('.') {
        return Err(no_layout());
    }
    Ok((parse_version(digits)?, describe(description), kind))
}

/// Parse `yyyy-mm-dd-hhmmss[-nnnn]_name` into `(version digits, description)`.
fn parse_diesel_dir_name(name: &str) -> Option<(String, String)> {
    let (stamp, description) = name.split_once('_')?;
    let parts: Vec<&str> = stamp.split('-').collect();
    let widths: &[usize] = match parts.len() {
        4 => &[4, 2, 2, 6],
        5 => &[4, 2, 2, 6, 0],
        _ => return None,
    };
    let shaped = parts.iter().zip(widths).all(|(part, &width)| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (width == 0 || part.len() == width)
    });
    (shaped && !description.is_empty()).then(|| (parts.concat(), describe(description)))
}

fn diesel_migration(
    path: &str,
    (digits, description): (String, String),
    entries: &[Entry],
    problems: &mut Vec<Problem>,
) -> Option<(Candidate, Option<SqlFile>)> {
    let mut up = None;
    let mut down = None;
    let mut run_in_transaction = true;
    for entry in entries {
        let Entry::File { name, bytes } = entry else {
            continue;
        };
        let file_path = format!("{path}/{name}");
        match name.as_str() {
            "up.sql" => up = read_text(&file_path, bytes, problems),
            "down.sql" => {
                down = read_text(&file_path, bytes, problems).map(|(text, normalised)| SqlFile {
                    path: file_path,
                    text,
                    normalised,
                });
            }
            "metadata.toml" => match diesel_metadata(bytes) {
                Ok(value) => run_in_transaction = value,
                Err(message) => problems.push(Problem {
                    path: file_path,
                    message,
                }),
            },
            other if !is_ignored(other) && other.ends_with(".sql") => problems.push(Problem {
                path: file_path,
                message: "a diesel migration folder holds only `up.sql`, `down.sql` and \
                          `metadata.toml`; move or remove this file"
                    .to_owned(),
            }),
            _ => {}
        }
    }
    let version = match parse_version(&digits) {
        Ok(version) => version,
        Err(message) => {
            problems.push(Problem {
                path: path.to_owned(),
                message,
            });
            return None;
        }
    };
    let Some((text, normalised)) = up else {
        problems.push(Problem {
            path: path.to_owned(),
            message: "this diesel migration folder has no `up.sql`; add it or remove the folder"
                .to_owned(),
        });
        return None;
    };
    let candidate = Candidate {
        version,
        description,
        kind: Kind::Diesel,
        path: path.to_owned(),
        text,
        normalised,
        no_transaction: !run_in_transaction,
    };
    Some((candidate, down))
}

/// The `run_in_transaction` key of a diesel `metadata.toml` (default `true`).
fn diesel_metadata(bytes: &[u8]) -> Result<bool, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "metadata.toml is not valid UTF-8".to_owned())?;
    let table: toml::Table = toml::from_str(text)
        .map_err(|error| format!("metadata.toml is not valid TOML: {}", error.message()))?;
    match table.get("run_in_transaction") {
        None => Ok(true),
        Some(toml::Value::Boolean(value)) => Ok(*value),
        Some(_) => {
            Err("`run_in_transaction` in metadata.toml must be `true` or `false`".to_owned())
        }
    }
}

/// Read the directives of the leading comment block: `Ok(no_transaction)`.
fn directives(text: &str) -> Result<bool, String> {
    let mut no_transaction = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        match comment.trim() {
            "stowage:no-transaction" | "no-transaction" => no_transaction = true,
            other if other.starts_with("stowage:") => {
                return Err(format!(
                    "unknown directive `-- {other}`; the only directive is `-- stowage:no-transaction`"
                ));
            }
            _ => {}
        }
    }
    Ok(no_transaction)
}

/// Whether a text holds nothing but white space and `--` comments.
fn is_blank(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with("--"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert!(
            matches!(parse_file_name("20260101120000_create_users.sql"), Ok((20260101120000, d, Kind::Simple)) if d == "create users")
        );
        assert!(matches!(parse_file_name("1_a.up.sql"), Ok((1, d, Kind::Up)) if d == "a"));
        assert!(matches!(parse_file_name("1_a.down.sql"), Ok((1, d, Kind::Down)) if d == "a"));
        assert!(
            matches!(parse_file_name("V3__create_users.sql"), Ok((3, d, Kind::Simple)) if d == "create users")
        );
        for bad in [
            "create.sql",
            "1.sql",
            "1_.sql",
            "V3_x.sql",
            "V__x.sql",
            "1_a.b.sql",
            "_1_a.sql",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad}");
        }
        assert!(
            parse_file_name("99999999999999999999_big.sql")
                .unwrap_err()
                .contains("does not fit")
        );
    }

    #[test]
    fn diesel_names() {
        assert_eq!(
            parse_diesel_dir_name("2026-01-01-120000_create_users"),
            Some(("20260101120000".to_owned(), "create users".to_owned()))
        );
        assert_eq!(
            parse_diesel_dir_name("2026-01-01-120000-0001_x"),
            Some(("202601011200000001".to_owned(), "x".to_owned()))
        );
        for bad in [
            "2026-01-01_x",
            "2026-1-01-120000_x",
            "2026-01-01-120000",
            "fixtures",
            "2026-01-01-120000-_x",
        ] {
            assert_eq!(parse_diesel_dir_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn directive_block() {
        assert_eq!(directives("-- stowage:no-transaction\nCREATE"), Ok(true));
        assert_eq!(
            directives("\n-- a comment\n-- no-transaction\nCREATE"),
            Ok(true)
        );
        assert_eq!(directives("CREATE\n-- stowage:no-transaction"), Ok(false));
        assert!(directives("-- stowage:no-tx\nCREATE").is_err());
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise("\u{feff}a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(checksum(&normalise("a\r\n")), checksum("a\n"));
    }
}
