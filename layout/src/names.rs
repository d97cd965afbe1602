//! The names of migration files and folders, and the directives inside them.

/// What a migration file or folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Simple,
    Up,
    Down,
    Diesel,
    /// `U<version>__<name>.sql`: Flyway's undo migration of the `V` file of
    /// the same version, or, without one, refinery's unversioned migration.
    Undo,
    /// `R__<name>.sql`: Flyway's repeatable migration, without a version.
    Repeatable,
}

/// The event a callback file runs at (`beforeMigrate.sql`, or
/// `beforeMigrate__<name>.sql`), as Flyway names them; Rust hooks run at
/// the same events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Event {
    /// Once, before the first pending migration, when there is work to do.
    BeforeMigrate,
    /// Before each migration applied (repeatable ones included).
    BeforeEachMigrate,
    /// After each migration applied and recorded.
    AfterEachMigrate,
    /// Once, after the last migration applied, before the lock is released.
    AfterMigrate,
}

impl Event {
    /// Every event, in the order a run meets them.
    pub const ALL: [Event; 4] = [
        Event::BeforeMigrate,
        Event::BeforeEachMigrate,
        Event::AfterEachMigrate,
        Event::AfterMigrate,
    ];

    /// The event's name, which is its callback file's name without `.sql`.
    pub const fn name(self) -> &'static str {
        match self {
            Event::BeforeMigrate => "beforeMigrate",
            Event::BeforeEachMigrate => "beforeEachMigrate",
            Event::AfterEachMigrate => "afterEachMigrate",
            Event::AfterMigrate => "afterMigrate",
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The event of a callback file's name: `<event>.sql` or `<event>__<name>.sql`.
pub(crate) fn callback_event(name: &str) -> Option<Event> {
    let stem = name.strip_suffix(".sql")?;
    Event::ALL.into_iter().find(|event| {
        stem.strip_prefix(event.name())
            .is_some_and(|rest| rest.is_empty() || rest.len() > 2 && rest.starts_with("__"))
    })
}

/// Flyway's other callback events, which stowage does not run: named so
/// that the error about such a file says so.
const OTHER_FLYWAY_EVENTS: [&str; 6] = [
    "afterMigrateError",
    "afterEachMigrateError",
    "beforeValidate",
    "afterValidate",
    "beforeClean",
    "afterClean",
];

/// A version's digits as an `i64`.
pub(crate) fn parse_version(digits: &str) -> Result<i64, String> {
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
pub(crate) fn parse_file_name(name: &str) -> Result<(i64, String, Kind), String> {
    let no_layout = || {
        format!(
            "`{name}` matches no migration layout; name it `<version>_<description>.sql`, \
             `<version>_<description>.up.sql` + `.down.sql`, or `V<version>__<description>.sql`"
        )
    };
    let stem = name.strip_suffix(".sql").ok_or_else(no_layout)?;
    if let Some(event) = OTHER_FLYWAY_EVENTS.iter().find(|e| stem.starts_with(*e)) {
        return Err(format!(
            "`{name}` is a Flyway callback stowage does not run ({event}); stowage runs \
             `beforeMigrate`, `beforeEachMigrate`, `afterEachMigrate` and `afterMigrate`, or \
             a Rust hook (`Migrator::on`)"
        ));
    }
    if let Some(description) = stem.strip_prefix("R__").filter(|d| !d.is_empty()) {
        return Ok((0, describe(description), Kind::Repeatable));
    }
    let prefixed = match stem.as_bytes().first() {
        Some(b'V') => Some(Kind::Simple),
        Some(b'U') => Some(Kind::Undo),
        _ => None,
    };
    if let Some(kind) = prefixed {
        let (digits, rest) = leading_digits(&stem[1..]);
        // Flyway reads `V01.sql` as version 01 without a description.
        let description = match rest {
            "" => Some(""),
            _ => rest.strip_prefix("__").filter(|d| !d.is_empty()),
        };
        let dotted = rest.starts_with(['.', '_'])
            && rest[1..].starts_with(|c: char| c.is_ascii_digit())
            && rest.contains("__");
        return match (digits.is_empty(), description) {
            (false, Some(description)) => Ok((parse_version(digits)?, describe(description), kind)),
            (false, None) if dotted => Err(format!(
                "`{name}` has a Flyway version with parts (`1.1`, or `1_1`, which Flyway reads \
                 as `1.1`); stowage's versions are whole numbers: renumber the migrations \
                 (`V11__…`), keeping their order"
            )),
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
    if description.is_empty() {
        return Err(no_layout());
    }
    Ok((parse_version(digits)?, describe(description), kind))
}

/// A diesel migration folder's name, read as diesel reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DieselName {
    /// The digits of stowage's version.
    pub(crate) digits: String,
    /// The version diesel gives the folder and records in its history.
    pub(crate) diesel_version: String,
    /// The description.
    pub(crate) description: String,
}

/// The version diesel gives a migration folder: what comes before the first
/// `_`, dashes removed (`2024-01-02-030405_x` → `20240102030405`). diesel
/// records this text in `__diesel_schema_migrations` and orders folders by it
/// as text.
pub fn diesel_version(folder_name: &str) -> String {
    folder_name
        .split('_')
        .next()
        .unwrap_or_default()
        .replace('-', "")
}

/// Parse a diesel folder name, `<digits and dashes>_<name>`, as diesel does:
/// `yyyy-mm-dd-hhmmss_name`, `00000000000000_diesel_initial_setup`,
/// `20140924113530_name`, `2024-01-02-030405-0001_name`.
///
/// The version is the digits, except that a timestamp,
/// `yyyy-mm-dd-hhmmss`, is read as `yyyy-mm-dd-hhmmss-0000`: newer diesel
/// names its folders with a four-digit suffix, and projects hold both, which
/// diesel orders as text (`20250101120000` after `202401011200000000`) and
/// stowage must order the same way by number. A name written as
/// `yyyy-mm-dd_hhmmss_name` (date, underscore, time) has the version diesel
/// sees, `yyyymmdd`, and is placed by its date and time likewise. Whether
/// diesel's order agrees is checked with the rest of the set.
pub(crate) fn parse_diesel_dir_name(name: &str) -> Option<DieselName> {
    let (stamp, rest) = name.split_once('_')?;
    if rest.is_empty() {
        return None;
    }
    diesel_name(name, stamp, rest)
}

/// Parse a diesel folder named by its version alone (`2019-09-11-164500`,
/// or with a trailing `_`), with no description. diesel takes any folder
/// that holds an `up.sql`, whatever its name, so the caller checks that it
/// does: without one, such a folder is no diesel migration.
pub(crate) fn parse_bare_diesel_dir_name(name: &str) -> Option<DieselName> {
    let stamp = name.strip_suffix('_').unwrap_or(name);
    if stamp.contains('_') {
        return None;
    }
    diesel_name(name, stamp, "")
}

/// A diesel folder's version and description, from its name, the part
/// before the first `_` (`stamp`) and the rest.
fn diesel_name(name: &str, stamp: &str, rest: &str) -> Option<DieselName> {
    let shaped = stamp.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && stamp.bytes().any(|b| b.is_ascii_digit());
    if !shaped {
        return None;
    }
    let diesel_version = diesel_version(name);
    let shape: Vec<usize> = stamp.split('-').map(str::len).collect();
    if shape == [4, 2, 2, 6] {
        return Some(DieselName {
            digits: format!("{diesel_version}0000"),
            diesel_version,
            description: describe(rest),
        });
    }
    let date = stamp.len() == 10
        && stamp.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if date
        && let Some((time, description)) = rest.split_once('_')
        && time.len() == 6
        && time.bytes().all(|b| b.is_ascii_digit())
        && !description.is_empty()
    {
        return Some(DieselName {
            digits: format!("{diesel_version}{time}0000"),
            diesel_version,
            description: describe(description),
        });
    }
    Some(DieselName {
        digits: diesel_version.clone(),
        diesel_version,
        description: describe(rest),
    })
}

/// The `run_in_transaction` key of a diesel `metadata.toml` (default `true`).
pub(crate) fn diesel_metadata(bytes: &[u8]) -> Result<bool, String> {
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

/// The directives of a migration's leading comment block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    /// `-- stowage:no-transaction` (or `-- no-transaction`).
    pub(crate) no_transaction: bool,
    /// `-- stowage:compatible`: binaries without the migration still work
    /// against the schema it makes.
    pub(crate) compatible: bool,
}

/// Read the directives of the leading comment block.
pub(crate) fn directives(text: &str) -> Result<Directives, String> {
    let mut found = Directives::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        match comment.trim() {
            "stowage:no-transaction" | "no-transaction" => found.no_transaction = true,
            "stowage:compatible" => found.compatible = true,
            other if other.starts_with("stowage:") => {
                return Err(format!(
                    "unknown directive `-- {other}`; the directives are \
                     `-- stowage:no-transaction` and `-- stowage:compatible`"
                ));
            }
            _ => {}
        }
    }
    Ok(found)
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
        // As sqlx reads it: docs.rs ships `…_release_status_view.sql.up.sql`.
        assert!(
            matches!(parse_file_name("2_view.sql.up.sql"), Ok((2, d, Kind::Up)) if d == "view.sql")
        );
        assert!(
            matches!(parse_file_name("V3__create_users.sql"), Ok((3, d, Kind::Simple)) if d == "create users")
        );
        assert!(matches!(
            parse_file_name("U3__create_users.sql"),
            Ok((3, _, Kind::Undo))
        ));
        assert!(
            matches!(parse_file_name("R__user_view.sql"), Ok((0, d, Kind::Repeatable)) if d == "user view")
        );
        // As Flyway reads it: a version without a description.
        assert!(matches!(parse_file_name("V01.sql"), Ok((1, d, Kind::Simple)) if d.is_empty()));
        for dotted in ["V1.1__a.sql", "V1_70__a.sql", "V2.43_0__a.sql"] {
            assert!(
                parse_file_name(dotted)
                    .unwrap_err()
                    .contains("whole numbers"),
                "{dotted}"
            );
        }
        assert!(
            parse_file_name("afterMigrateError.sql")
                .unwrap_err()
                .contains("does not run")
        );
        for bad in [
            "create.sql",
            "1.sql",
            "1_.sql",
            "V3_x.sql",
            "V__x.sql",
            "V.sql",
            "U3_x.sql",
            "_1_a.sql",
            "R__.sql",
            "R_x.sql",
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
    fn callback_names() {
        assert_eq!(
            callback_event("beforeMigrate.sql"),
            Some(Event::BeforeMigrate)
        );
        assert_eq!(
            callback_event("afterEachMigrate__audit.sql"),
            Some(Event::AfterEachMigrate)
        );
        assert_eq!(
            callback_event("afterMigrate.sql"),
            Some(Event::AfterMigrate)
        );
        for other in [
            "beforeMigrate",
            "beforeMigrate__.sql",
            "beforeMigrateX.sql",
            "afterMigrateError.sql",
            "BeforeMigrate.sql",
        ] {
            assert_eq!(callback_event(other), None, "{other}");
        }
    }

    #[test]
    fn diesel_names() {
        let parsed =
            |name| parse_diesel_dir_name(name).map(|n| (n.digits, n.diesel_version, n.description));
        let some = |digits: &str, diesel: &str, description: &str| {
            Some((digits.to_owned(), diesel.to_owned(), description.to_owned()))
        };
        assert_eq!(
            parsed("2026-01-01-120000_create_users"),
            some("202601011200000000", "20260101120000", "create users")
        );
        assert_eq!(
            parsed("2026-01-01-120000-0001_x"),
            some("202601011200000001", "202601011200000001", "x")
        );
        // `diesel setup`'s own folder, and crates.io's plain numbers.
        assert_eq!(
            parsed("00000000000000_diesel_initial_setup"),
            some("00000000000000", "00000000000000", "diesel initial setup")
        );
        assert_eq!(
            parsed("20140924113530_dumped_migration_1"),
            some("20140924113530", "20140924113530", "dumped migration 1")
        );
        // Date, underscore, time: placed by both; diesel sees the date only.
        assert_eq!(
            parsed("2024-03-13_170000_sso_userscascade"),
            some("202403131700000000", "20240313", "sso userscascade")
        );
        assert_eq!(parsed("2024-03-13_x"), some("20240313", "20240313", "x"));
        assert_eq!(
            parsed("2026-01-01-120000-_x"),
            some("20260101120000", "20260101120000", "x")
        );
        assert_eq!(
            parsed("2026-01-01-1200-00_x"),
            some("20260101120000", "20260101120000", "x")
        );
        for bad in [
            "2026-01-01-120000",
            "fixtures",
            "-_x",
            "2026-01-01-120000_",
            "v1_x",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
        assert_eq!(diesel_version("2024-03-13_170000_a"), "20240313");
        // Named by the version alone: as diesel reads it (the caller checks
        // that the folder holds an up.sql).
        let bare = |name| {
            parse_bare_diesel_dir_name(name).map(|n| (n.digits, n.diesel_version, n.description))
        };
        assert_eq!(
            bare("2019-09-11-164500"),
            some("201909111645000000", "20190911164500", "")
        );
        assert_eq!(
            bare("2026-01-01-120000_"),
            some("202601011200000000", "20260101120000", "")
        );
        assert_eq!(
            bare("00000000000001"),
            some("00000000000001", "00000000000001", "")
        );
        for bad in [
            "fixtures",
            "2026-01-01-120000_x",
            "-",
            "v1",
            "2024-03-13_170000",
        ] {
            assert_eq!(bare(bad), None, "{bad}");
        }
    }

    #[test]
    fn directive_block() {
        let no_transaction = Directives {
            no_transaction: true,
            compatible: false,
        };
        assert_eq!(
            directives("-- stowage:no-transaction\nCREATE"),
            Ok(no_transaction)
        );
        assert_eq!(
            directives("\n-- a comment\n-- no-transaction\nCREATE"),
            Ok(no_transaction)
        );
        assert_eq!(
            directives("CREATE\n-- stowage:no-transaction"),
            Ok(Directives::default())
        );
        assert_eq!(
            directives("-- stowage:compatible\n-- stowage:no-transaction\nCREATE"),
            Ok(Directives {
                no_transaction: true,
                compatible: true,
            })
        );
        assert_eq!(
            directives("CREATE INDEX i ON t (c);\n-- stowage:compatible").map(|d| d.compatible),
            Ok(false),
            "only the leading comments hold directives"
        );
        assert!(directives("-- stowage:no-tx\nCREATE").is_err());
    }
}
