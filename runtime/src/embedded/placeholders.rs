//! Placeholders: `${name}` in migrations and callbacks, replaced when the
//! migrator uses them (`Migrator::with_placeholders`, `Migrator::placeholder`).

use std::borrow::Cow;

/// The placeholder values of a migrator: off (SQL runs as written) until
/// one of its placeholder settings is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Placeholders {
    pub(crate) on: bool,
    pub(crate) fixed: &'static [(&'static str, &'static str)],
    pub(crate) added: Vec<(String, String)>,
}

/// A placeholder without a value, where it is first used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unset {
    pub(crate) name: String,
    pub(crate) line: usize,
}

impl Placeholders {
    pub(crate) const OFF: Placeholders = Placeholders {
        on: false,
        fixed: &[],
        added: Vec::new(),
    };

    /// The value of `name`: the environment's `STOWAGE_PLACEHOLDER_<NAME>`
    /// first, so that a deployment can change a value without a rebuild,
    /// then the values given in code, the latest first.
    pub(crate) fn value(&self, name: &str) -> Option<String> {
        std::env::var(env_var(name))
            .ok()
            .or_else(|| {
                self.added
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
            .or_else(|| {
                self.fixed
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
    }

    /// `sql` with its placeholders replaced, or as written when placeholders
    /// are off.
    pub(crate) fn apply<'s>(&self, sql: &'s str) -> Result<Cow<'s, str>, Unset> {
        if !self.on {
            return Ok(Cow::Borrowed(sql));
        }
        replace(sql, |name| self.value(name))
    }

    /// `sql` of the file at `path`, ready to run: [`apply`](Self::apply),
    /// an unset placeholder reported as [`Error::PlaceholderUnset`](crate::Error::PlaceholderUnset).
    pub(crate) fn resolve(&self, path: &str, sql: &str) -> Result<String, crate::Error> {
        self.apply(sql)
            .map(Cow::into_owned)
            .map_err(|unset| crate::Error::PlaceholderUnset {
                source_path: path.to_owned(),
                env_var: env_var(&unset.name),
                name: unset.name,
                line: unset.line,
            })
    }
}

/// The environment variable that gives placeholder `name` a value:
/// `STOWAGE_PLACEHOLDER_` and the name in capitals, other characters than
/// letters and digits as `_` (`flyway:user` → `STOWAGE_PLACEHOLDER_FLYWAY_USER`).
pub(crate) fn env_var(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_uppercase(),
            _ => '_',
        })
        .collect();
    format!("STOWAGE_PLACEHOLDER_{name}")
}

/// Replace each `${name}` (a name of ASCII letters, digits, `_`, `:`, `.`
/// and `-`, starting with a letter or `_`, as Flyway's `${flyway:user}`) by
/// its value, and each `$${` by `${`; any other `$` is left as it is.
pub(crate) fn replace<'s>(
    sql: &'s str,
    value: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'s, str>, Unset> {
    if !sql.contains("${") {
        return Ok(Cow::Borrowed(sql));
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some((name, after)) = placeholder(tail) {
            let Some(value) = value(name) else {
                let offset = sql.len() - tail.len();
                return Err(Unset {
                    name: name.to_owned(),
                    line: sql[..offset].matches('\n').count() + 1,
                });
            };
            out.push_str(&value);
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// `${name}` at the start of `text`: the name and what follows.
fn placeholder(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix("${")?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    let mut bytes = name.bytes();
    let plain = matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'));
    plain.then(|| (name, &inner[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &str) -> Option<String> {
        match name {
            "owner" => Some("app_owner".to_owned()),
            "n" => Some("3".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn replaces_names_and_unescapes() {
        assert_eq!(
            replace("GRANT ALL ON t TO ${owner}; SELECT ${n};", values).unwrap(),
            "GRANT ALL ON t TO app_owner; SELECT 3;"
        );
        assert_eq!(
            replace("SELECT '$${owner}', $$x$$, $1, ${1x}, ${a b}, ${", values).unwrap(),
            "SELECT '${owner}', $$x$$, $1, ${1x}, ${a b}, ${"
        );
        assert!(matches!(
            replace("SELECT 1", values),
            Ok(Cow::Borrowed("SELECT 1"))
        ));
    }

    #[test]
    fn an_unset_name_is_reported_with_its_line() {
        assert_eq!(
            replace("SELECT 1;\nSELECT ${owner}, ${schema};", values),
            Err(Unset {
                name: "schema".to_owned(),
                line: 2
            })
        );
    }

    #[test]
    fn off_leaves_the_text_as_written() {
        let off = Placeholders::OFF;
        assert_eq!(off.apply("SELECT '${x}'").unwrap(), "SELECT '${x}'");
        let on = Placeholders {
            on: true,
            fixed: &[("x", "fixed")],
            added: vec![("x".to_owned(), "added".to_owned())],
        };
        assert_eq!(on.apply("SELECT '${x}'").unwrap(), "SELECT 'added'");
        assert_eq!(env_var("app_owner"), "STOWAGE_PLACEHOLDER_APP_OWNER");
        assert_eq!(env_var("flyway:user"), "STOWAGE_PLACEHOLDER_FLYWAY_USER");
        assert_eq!(
            on.apply("${flyway:database}"),
            Err(Unset {
                name: "flyway:database".to_owned(),
                line: 1
            })
        );
    }
}
