//! The names of migration files and folders, and the directives inside them.

/// What a migration file or folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Simple,
    Up,
    Down,
    Diesel,
}

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
pub(crate) fn parse_diesel_dir_name(name: &str) -> Option<(String, String)> {
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

/// Read the directives of the leading comment block: `Ok(no_transaction)`.
pub(crate) fn directives(text: &str) -> Result<bool, String> {
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
pub(crate) fn is_blank(text: &str) -> bool {
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
}
