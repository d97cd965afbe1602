//! The same naming rules from the other side: the names of a new migration
//! in a folder's own layout (`migrate new`), and a name on disk read back
//! as [`classify`](crate::classify) reads it.

use crate::names::{Kind, parse_diesel_dir_name, parse_file_name, parse_version};

/// How a folder names its migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<version>_<name>.sql`, or `.up.sql` + `.down.sql` when reversible.
    Sqlx,
    /// `V<version>__<name>.sql`, with `U<version>__<name>.sql` to revert it.
    Flyway,
    /// `<version>_<name>/up.sql` + `down.sql` (always both, as diesel
    /// writes them).
    Diesel,
}

/// One file of a new migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Its path relative to the set's folder, `/`-separated.
    pub path: String,
    /// Whether it reverts the migration (else it applies it).
    pub down: bool,
}

impl Layout {
    /// The layout of a folder whose newest migration is `name`: a file's
    /// name, or a diesel migration's folder name (which does not end in
    /// `.sql`).
    pub fn of(name: &str) -> Layout {
        match name {
            name if !name.ends_with(".sql") => Layout::Diesel,
            name if name.starts_with(['V', 'U']) => Layout::Flyway,
            _ => Layout::Sqlx,
        }
    }

    /// The files of migration `version` (as it is to be written:
    /// `0004`, `20260101120000`, diesel's `2026-01-01-120000`), named
    /// `description` (letters, digits and `_`), the up file first.
    pub fn files(self, version: &str, description: &str, reversible: bool) -> Vec<NewFile> {
        let file = |path: String, down| NewFile { path, down };
        match self {
            Layout::Diesel => vec![
                file(format!("{version}_{description}/up.sql"), false),
                file(format!("{version}_{description}/down.sql"), true),
            ],
            Layout::Flyway if reversible => vec![
                file(format!("V{version}__{description}.sql"), false),
                file(format!("U{version}__{description}.sql"), true),
            ],
            Layout::Flyway => vec![file(format!("V{version}__{description}.sql"), false)],
            Layout::Sqlx if reversible => vec![
                file(format!("{version}_{description}.up.sql"), false),
                file(format!("{version}_{description}.down.sql"), true),
            ],
            Layout::Sqlx => vec![file(format!("{version}_{description}.sql"), false)],
        }
    }
}

/// A migration's file or folder name, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The layout the name is in.
    pub layout: Layout,
    /// The version as the name writes it (`0004`, `2026-01-01-120000`).
    pub written: String,
    /// The version as the versions of a set compare: its digits (diesel's
    /// timestamps with their four-digit suffix).
    pub number: u128,
    /// The description as the name writes it (`add_orders`).
    pub description: String,
}

impl Named {
    /// Read `name`, a file's name or (`dir`) a folder's, as
    /// [`classify`](crate::classify) reads a migration's; `None` when it
    /// names none (a callback, a repeatable migration, any other file).
    pub fn read(name: &str, dir: bool) -> Option<Named> {
        if dir {
            let diesel = parse_diesel_dir_name(name)?;
            let (written, description) = name.split_once('_')?;
            return Some(Named {
                layout: Layout::Diesel,
                written: written.to_owned(),
                number: diesel.digits.parse().ok()?,
                description: description.to_owned(),
            });
        }
        let (_, _, kind) = parse_file_name(name).ok()?;
        let flyway = matches!(kind, Kind::Undo) || name.starts_with('V');
        let stem = name.strip_suffix(".sql")?;
        let stem = match flyway {
            true => stem.get(1..)?,
            false => stem,
        };
        let (written, rest) = stem.split_once('_')?;
        let description = match flyway {
            true => rest.strip_prefix('_')?,
            false => [".up", ".down"]
                .iter()
                .find_map(|end| rest.strip_suffix(end))
                .unwrap_or(rest),
        };
        parse_version(written).ok()?;
        Some(Named {
            layout: if flyway { Layout::Flyway } else { Layout::Sqlx },
            written: written.to_owned(),
            number: written.parse().ok()?,
            description: description.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, classify};

    /// The migrations folder holding `files`.
    fn folder(files: &[NewFile]) -> Vec<Entry> {
        let mut entries = Vec::new();
        for file in files {
            let text = if file.down {
                "DROP TABLE t;"
            } else {
                "CREATE TABLE t (id INT);"
            };
            let bytes = text.as_bytes().to_vec();
            match file.path.split_once('/') {
                Some((dir, name)) => {
                    let file = Entry::File {
                        name: name.to_owned(),
                        bytes,
                    };
                    match entries.iter_mut().find(|e: &&mut Entry| e.name() == dir) {
                        Some(Entry::Dir { entries, .. }) => entries.push(file),
                        _ => entries.push(Entry::Dir {
                            name: dir.to_owned(),
                            entries: vec![file],
                        }),
                    }
                }
                None => entries.push(Entry::File {
                    name: file.path.clone(),
                    bytes,
                }),
            }
        }
        entries
    }

    #[test]
    fn what_new_writes_reads_back_as_written_in_every_layout() {
        let cases = [
            (Layout::Sqlx, "0004", 4),
            (Layout::Sqlx, "20260101120000", 20_260_101_120_000),
            (Layout::Flyway, "7", 7),
            (Layout::Flyway, "20260101120000", 20_260_101_120_000),
            (Layout::Diesel, "2026-01-01-120000", 202_601_011_200_000_000),
            (
                Layout::Diesel,
                "2026-01-01-120000-0001",
                202_601_011_200_000_001,
            ),
            (Layout::Diesel, "20140924113530", 20_140_924_113_530),
        ];
        for (layout, version, number) in cases {
            for reversible in [false, true] {
                let files = layout.files(version, "add_orders", reversible);
                assert_eq!(
                    files.iter().any(|f| f.down),
                    reversible || layout == Layout::Diesel
                );
                // The name it writes reads back as written …
                let first = &files[0].path;
                let (name, dir) = match first.split_once('/') {
                    Some((dir, _)) => (dir, true),
                    None => (first.as_str(), false),
                };
                let named = Named::read(name, dir).unwrap();
                assert_eq!(
                    named,
                    Named {
                        layout,
                        written: version.to_owned(),
                        number,
                        description: "add_orders".to_owned(),
                    }
                );
                assert_eq!(Layout::of(name), layout);
                // … and the folder it makes is one migration, of that
                // version and description, with its down when it has one.
                let sets = classify(&folder(&files)).unwrap();
                let migration = &sets[0].migrations[0];
                assert_eq!(u128::try_from(migration.version).ok(), Some(number));
                assert_eq!(migration.description, "add orders");
                assert_eq!(migration.down.is_some(), files.len() == 2);
            }
        }
    }

    #[test]
    fn other_names_are_no_migration() {
        for (name, dir) in [
            ("R__views.sql", false),
            ("beforeMigrate.sql", false),
            ("README.md", false),
            ("3_notes.txt", false),
            ("notes", true),
        ] {
            assert_eq!(Named::read(name, dir), None, "{name}");
        }
    }
}
