//! [`classify`]: a folder's entries into migration sets, or every problem.

use crate::names::{
    DieselName, Kind, callback_event, diesel_metadata, directives, parse_bare_diesel_dir_name,
    parse_diesel_dir_name, parse_file_name, parse_version,
};
use crate::{
    Callback, Dialect, Entry, Parsed, Problem, Set, SqlFile, chain_next, chain_seed, checksum,
    normalise, repeatable_key,
};
use std::collections::BTreeMap;

/// Turn a folder's entries into its migration sets, or say everything wrong with it.
pub fn classify(entries: &[Entry]) -> Result<Vec<Set>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut dialect_dirs: Vec<(Dialect, &str, &[Entry])> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Dir { name, entries } => {
                Dialect::from_folder(name).map(|dialect| (dialect, name.as_str(), &entries[..]))
            }
            Entry::File { .. } => None,
        })
        .collect();
    dialect_dirs.sort_by_key(|&(dialect, name, _)| (dialect, name));
    for pair in dialect_dirs.windows(2) {
        if let [(a, first, _), (b, second, _)] = pair
            && a == b
        {
            problems.push(Problem {
                path: (*second).to_owned(),
                message: format!(
                    "`{first}` and `{second}` both hold {a} migrations; keep one folder per \
                     dialect, or point `embed_migrations!` at each folder on its own"
                ),
            });
        }
    }
    let sets = if dialect_dirs.is_empty() {
        vec![collect_set(None, "", entries, &mut problems)]
    } else {
        for entry in entries {
            let name = entry.name();
            let is_dialect =
                matches!(entry, Entry::Dir { .. }) && Dialect::from_folder(name).is_some();
            if !is_dialect && looks_like_migration(entry) {
                problems.push(Problem {
                    path: name.to_owned(),
                    message: format!(
                        "this folder has dialect subfolders ({}), so migrations must live inside them; \
                         move `{name}` into each dialect folder that needs it (a dialect's folder is \
                         named `postgres` or `postgresql`, `mysql` or `mariadb`, `sqlite`)",
                        dialect_dirs.iter().map(|(_, n, _)| *n).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        dialect_dirs.dedup_by_key(|&mut (dialect, _, _)| dialect);
        dialect_dirs
            .into_iter()
            .map(|(dialect, name, children)| {
                collect_set(Some(dialect), &format!("{name}/"), children, &mut problems)
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

fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
}

/// A refinery migration written in Rust (`V1__name.rs`), which a folder
/// must not hold silently: its SQL would never run.
fn rust_migration(name: &str) -> bool {
    name.starts_with(['V', 'U'])
        && name
            .strip_suffix(".rs")
            .is_some_and(|stem| parse_file_name(&format!("{stem}.sql")).is_ok())
}

/// A folder diesel reads as a migration: named `<version>_<name>`, or by its
/// version alone when it holds an `up.sql` (diesel takes any folder with
/// one; stowage keeps to names that carry a version).
fn diesel_dir(name: &str, entries: &[Entry]) -> Option<DieselName> {
    parse_diesel_dir_name(name).or_else(|| {
        let has_up = entries
            .iter()
            .any(|entry| matches!(entry, Entry::File { name, .. } if name == "up.sql"));
        has_up.then(|| parse_bare_diesel_dir_name(name)).flatten()
    })
}

/// Whether an entry would be read as (part of) a migration in a flat folder.
fn looks_like_migration(entry: &Entry) -> bool {
    match entry {
        Entry::File { name, .. } => !is_ignored(name) && name.ends_with(".sql"),
        Entry::Dir { name, entries } => {
            !is_ignored(name)
                && (diesel_dir(name, entries).is_some() || entries.iter().any(looks_like_migration))
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
    /// `-- stowage:compatible` in its leading comments.
    compatible: bool,
    /// The version diesel gives a diesel folder.
    diesel_version: Option<String>,
}

fn collect_set(
    dialect: Option<Dialect>,
    prefix: &str,
    entries: &[Entry],
    problems: &mut Vec<Problem>,
) -> Set {
    let mut candidates = Vec::new();
    // Down SQL of diesel folders, keyed by the index of their candidate.
    let mut diesel_downs = BTreeMap::new();
    // diesel reads folders only: beside its folders, a loose script (data
    // run by hand, say) is no migration to it, nor to stowage.
    let diesel_folders = entries.iter().any(|entry| {
        matches!(entry, Entry::Dir { name, entries } if !is_ignored(name) && diesel_dir(name, entries).is_some())
    });
    let mut callbacks = Vec::new();
    for entry in entries {
        match entry {
            Entry::File { name, .. } if rust_migration(name) => problems.push(Problem {
                path: format!("{prefix}{name}"),
                message: format!(
                    "a refinery migration written in Rust, which stowage cannot run (it embeds \
                     SQL files only): write it as `{}.sql`, or leave the Rust migrations to \
                     refinery",
                    name.trim_end_matches(".rs")
                ),
            }),
            Entry::File { name, .. } if is_ignored(name) || !name.ends_with(".sql") => {}
            Entry::File { name, bytes } if callback_event(name).is_some() => {
                let path = format!("{prefix}{name}");
                if let (Some(event), Some((text, normalised))) =
                    (callback_event(name), read_text(&path, bytes, problems))
                {
                    callbacks.push(Callback {
                        event,
                        file: SqlFile {
                            path,
                            text,
                            normalised,
                        },
                    });
                }
            }
            Entry::File { name, bytes } => {
                let path = format!("{prefix}{name}");
                if let Some(candidate) =
                    file_candidate(path, name, bytes, !diesel_folders, problems)
                {
                    candidates.push(candidate);
                }
            }
            Entry::Dir { name, .. } if is_ignored(name) => {}
            Entry::Dir { name, entries } => {
                let path = format!("{prefix}{name}");
                let mut grouped = Vec::new();
                match diesel_dir(name, entries) {
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
                    // refinery finds its files in subfolders at any depth.
                    None if refinery_group(&path, entries, &mut grouped) && !grouped.is_empty() => {
                        for (path, name, bytes) in grouped {
                            if let Some(candidate) =
                                file_candidate(path, name, bytes, true, problems)
                            {
                                candidates.push(candidate);
                            }
                        }
                    }
                    None if entries.iter().any(looks_like_migration) => problems.push(Problem {
                        path,
                        message: "this folder holds SQL but its name is not a diesel migration \
                                  (`<version>_<name>`, or `<version>` alone with an `up.sql` \
                                  in it; the version digits and dashes, such as \
                                  `yyyy-mm-dd-hhmmss_name`), nor only refinery's and Flyway's \
                                  `V<version>__<name>.sql` (`U…`, `R__…`) files; rename it or move \
                                  its files out"
                            .to_owned(),
                    }),
                    None => {}
                }
            }
        }
    }

    for candidate in &mut candidates {
        if matches!(
            candidate.kind,
            Kind::Simple | Kind::Up | Kind::Diesel | Kind::Repeatable
        ) {
            match directives(&candidate.text) {
                Ok(found) => {
                    candidate.no_transaction |= found.no_transaction;
                    candidate.compatible = found.compatible;
                }
                Err(message) => problems.push(Problem {
                    path: candidate.path.clone(),
                    message,
                }),
            }
        }
    }
    diesel_order(&candidates, problems);
    let (repeatables, candidates): (Vec<Candidate>, Vec<Candidate>) = candidates
        .into_iter()
        .partition(|c| c.kind == Kind::Repeatable);
    let repeatables = repeatable_set(repeatables, problems);
    callbacks.sort_by(|a, b| (a.event, &a.file.path).cmp(&(b.event, &b.file.path)));

    let mut by_version: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (index, candidate) in candidates.iter().enumerate() {
        by_version.entry(candidate.version).or_default().push(index);
    }

    let mut migrations = Vec::new();
    let mut chain = chain_seed();
    for (version, indices) in by_version {
        // `U<version>__` undoes the `V` file of its version (Flyway), or,
        // alone, is a migration of its own (refinery's unversioned one).
        let undoes = indices
            .iter()
            .any(|&i| !matches!(candidates[i].kind, Kind::Down | Kind::Undo));
        let is_down = |c: &Candidate| c.kind == Kind::Down || (c.kind == Kind::Undo && undoes);
        let ups: Vec<&Candidate> = indices
            .iter()
            .map(|&i| &candidates[i])
            .filter(|c| !is_down(c))
            .collect();
        let downs: Vec<&Candidate> = indices
            .iter()
            .map(|&i| &candidates[i])
            .filter(|c| is_down(c))
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
                    && down.kind == Kind::Down
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
                let up_index = indices.iter().copied().find(|&i| !is_down(&candidates[i]));
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
                    compatible: up.compatible,
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
        repeatables,
        callbacks,
    }
}

/// The repeatable migrations, by description, which identifies each.
fn repeatable_set(candidates: Vec<Candidate>, problems: &mut Vec<Problem>) -> Vec<Parsed> {
    let mut by_description: BTreeMap<String, Candidate> = BTreeMap::new();
    for candidate in candidates {
        if let Some(first) = by_description.get(&candidate.description) {
            let (a, b) = if first.path < candidate.path {
                (&first.path, &candidate.path)
            } else {
                (&candidate.path, &first.path)
            };
            problems.push(Problem {
                path: b.clone(),
                message: format!(
                    "this repeatable migration has the same name as `{a}`; a repeatable \
                     migration is known by its name, so give each its own"
                ),
            });
            continue;
        }
        by_description.insert(candidate.description.clone(), candidate);
    }
    by_description
        .into_values()
        .map(|c| {
            let checksum = checksum(&c.text);
            Parsed {
                version: repeatable_key(&c.description),
                description: c.description,
                source: c.path.clone(),
                up: SqlFile {
                    path: c.path,
                    text: c.text,
                    normalised: c.normalised,
                },
                down: None,
                no_transaction: c.no_transaction,
                compatible: c.compatible,
                checksum,
                chain: checksum,
            }
        })
        .collect()
}

/// A migration file's candidate; a name that matches no layout is a
/// problem when `strict`, else the file is left out.
fn file_candidate(
    path: String,
    name: &str,
    bytes: &[u8],
    strict: bool,
    problems: &mut Vec<Problem>,
) -> Option<Candidate> {
    let (version, description, kind) = match parse_file_name(name) {
        Ok(parsed) => parsed,
        Err(message) => {
            if strict {
                problems.push(Problem { path, message });
            }
            return None;
        }
    };
    let (text, normalised) = read_text(&path, bytes, problems)?;
    Some(Candidate {
        version,
        description,
        kind,
        path,
        text,
        normalised,
        no_transaction: false,
        compatible: false,
        diesel_version: None,
    })
}

/// Gather the `.sql` files under a folder, at any depth, when every one of
/// them is named as refinery and Flyway name them (`V<version>__<name>.sql`,
/// `U…`, `R__<name>.sql`).
fn refinery_group<'e>(
    path: &str,
    entries: &'e [Entry],
    out: &mut Vec<(String, &'e str, &'e [u8])>,
) -> bool {
    entries.iter().all(|entry| match entry {
        Entry::File { name, .. } if is_ignored(name) || !name.ends_with(".sql") => true,
        Entry::File { name, bytes } => {
            let refinery = name.starts_with(['V', 'U', 'R']) && parse_file_name(name).is_ok();
            if refinery {
                out.push((format!("{path}/{name}"), name.as_str(), &bytes[..]));
            }
            refinery
        }
        Entry::Dir { name, .. } if is_ignored(name) => true,
        Entry::Dir { name, entries } => refinery_group(&format!("{path}/{name}"), entries, out),
    })
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

/// diesel runs its folders in the order of their versions compared as text;
/// stowage in the order of their numbers. Where the two disagree, or two
/// folders share diesel's version, a database diesel migrated could have
/// had them applied in another order: refuse by name.
fn diesel_order(candidates: &[Candidate], problems: &mut Vec<Problem>) {
    let mut diesel: Vec<(&str, i64, &Candidate)> = candidates
        .iter()
        .filter_map(|c| Some((c.diesel_version.as_deref()?, c.version, c)))
        .collect();
    diesel.sort_by_key(|&(_, version, _)| version);
    for pair in diesel.windows(2) {
        let [(text_a, _, a), (text_b, _, b)] = pair else {
            continue;
        };
        // The same number (a suffix diesel keeps, stowage reads as zeros):
        // refused as a version used twice.
        if text_a < text_b || a.version == b.version {
            continue;
        }
        let fix = if text_a == text_b {
            format!("diesel gives `{}` the same version, {text_a}", b.path)
        } else {
            format!(
                "diesel, which compares versions as text, runs `{}` (version {text_b}) before it",
                b.path
            )
        };
        problems.push(Problem {
            path: a.path.clone(),
            message: format!(
                "{fix}, while stowage, which orders by number, runs it first ({} < {}); \
                 rename the folders so that both orders agree, with versions of the same \
                 length (`yyyy-mm-dd-hhmmss_name`)",
                a.version, b.version
            ),
        });
    }
}

fn diesel_migration(
    path: &str,
    DieselName {
        digits,
        diesel_version,
        description,
    }: DieselName,
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
        compatible: false,
        diesel_version: Some(diesel_version),
    };
    Some((candidate, down))
}

#[cfg(test)]
mod tests {
    use super::classify;
    use crate::Entry;

    fn file(name: &str, sql: &str) -> Entry {
        Entry::File {
            name: name.to_owned(),
            bytes: sql.as_bytes().to_vec(),
        }
    }

    fn dir(name: &str, entries: Vec<Entry>) -> Entry {
        Entry::Dir {
            name: name.to_owned(),
            entries,
        }
    }

    fn problems(entries: &[Entry]) -> Vec<String> {
        match classify(entries) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    /// A refinery folder of Rust migrations is refused by name, not read
    /// as an empty set; other `.rs` files stay ignored.
    #[test]
    fn a_refinery_rust_migration_is_refused() {
        let found = problems(&[
            file(
                "V1__hashes.rs",
                "pub fn migration() -> String { String::new() }",
            ),
            file("V2__more.sql", "CREATE TABLE t (id INT);"),
            file("mod.rs", "mod V1__hashes;"),
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("V1__hashes.rs: "), "{found:?}");
        assert!(found[0].contains("`V1__hashes.sql`"), "{found:?}");
        assert!(classify(&[file("V2__more.sql", "SELECT 1;"), file("build.rs", "")]).is_ok());
    }

    /// Two diesel folders that stowage reads as one number (diesel's
    /// `-0000` suffix on one) are refused as a version used twice, without
    /// an ordering message that compares the number with itself.
    #[test]
    fn diesel_folders_of_one_number_are_a_version_used_twice() {
        let found = problems(&[
            dir(
                "2026-05-27-120000-0000_with_suffix",
                vec![file("up.sql", "SELECT 1;")],
            ),
            dir(
                "2026-05-27-120000_without",
                vec![file("up.sql", "SELECT 2;")],
            ),
        ]);
        assert!(!found.is_empty());
        assert!(
            found.iter().all(|p| p.contains("is used more than once")),
            "{found:?}"
        );
    }
}
