//! Renames: what a drop and an add cannot tell apart, said by the user.

use super::{mysql_quote, quote};
use crate::Dialect;
use crate::schema::{ObjectKind, Schema};

/// Tables and columns renamed between two schemas, which the generator
/// cannot tell from a drop and an add
/// ([`Migrator::generate`](crate::Migrator::generate)): each becomes an
/// `ALTER TABLE … RENAME`, and the rows stay.
///
/// Names are as in the current schema, new names as in the desired one; a
/// column's table is named as it is now, before its own rename.
///
/// ```
/// let renames = stowage::Renames::new()
///     .table("users", "people")
///     .column("users", "name", "full_name");
/// assert!(!renames.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renames {
    tables: Vec<(String, String)>,
    columns: Vec<(String, String, String)>,
    /// `--rename` hints not yet read on a schema.
    hints: Vec<(String, String)>,
}

impl Renames {
    /// No renames.
    pub fn new() -> Renames {
        Renames::default()
    }

    /// Table `from` is renamed `to`.
    pub fn table(mut self, from: &str, to: &str) -> Renames {
        self.tables.push((from.to_owned(), to.to_owned()));
        self
    }

    /// Column `from` of `table` is renamed `to`.
    pub fn column(mut self, table: &str, from: &str, to: &str) -> Renames {
        self.columns
            .push((table.to_owned(), from.to_owned(), to.to_owned()));
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.columns.is_empty() && self.hints.is_empty()
    }

    /// A hint as the command line's `--rename` takes it: `old=new`
    /// renames a table (`schema.old=new` on PostgreSQL too),
    /// `table.old=new` a column of that table; which one it is, the current
    /// schema decides (a table named `old`, or not).
    ///
    /// ```
    /// let renames = stowage::Renames::new().hint("users.name=full_name")?;
    /// assert!(stowage::Renames::new().hint("users.name").is_err());
    /// # Ok::<(), stowage::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`](crate::Error::InvalidTarget) when it is not
    /// of that form.
    pub fn hint(mut self, hint: &str) -> Result<Renames, crate::Error> {
        let bad = || {
            crate::Error::InvalidTarget(format!(
                "the rename `{hint}` is not `table=new_name` or `table.column=new_name` (the \
                 names as in the current schema, the new one as in the desired)"
            ))
        };
        let (old, new) = hint.split_once('=').ok_or_else(bad)?;
        let (old, new) = (old.trim(), new.trim());
        if old.is_empty() || new.is_empty() || new.contains(['.', '=']) {
            return Err(bad());
        }
        self.hints.push((old.to_owned(), new.to_owned()));
        Ok(self)
    }

    /// The hints read on `current`: each a table's rename or a column's;
    /// what [`up`](Self::up), [`down`](Self::down) and [`said`](Self::said)
    /// take.
    pub(crate) fn resolved(&self, current: &Schema) -> Result<Renames, String> {
        let mut out = Renames {
            hints: Vec::new(),
            ..self.clone()
        };
        for (old, new) in &self.hints {
            if table_named(current, old).is_some() {
                out = out.table(old, new);
                continue;
            }
            let (table, column) = old
                .rsplit_once('.')
                .ok_or_else(|| format!("the rename `{old}={new}`: the current schema has no table {old}"))?;
            if table_named(current, table).is_none() {
                return Err(format!(
                    "the rename `{old}={new}`: the current schema has no table {table}"
                ));
            }
            out = out.column(table, column, new);
        }
        Ok(out)
    }

    /// The statements that rename, on `current`: tables first, then
    /// columns, on their tables' new names. Refused when a table is not in
    /// `current` or its new name not in `desired`.
    pub(crate) fn up(&self, current: &Schema, desired: &Schema) -> Result<Vec<String>, String> {
        let dialect = current.dialect();
        let mut out = Vec::new();
        for (from, to) in &self.tables {
            let name = table_named(current, from)
                .ok_or_else(|| format!("the current schema has no table {from} to rename"))?;
            let renamed = sibling(dialect, name, to);
            if desired.get(ObjectKind::Table, &renamed).is_none()
                && table_named(desired, to).is_none()
            {
                return Err(format!(
                    "table {from} is renamed {to}, but the desired schema has no table {to}"
                ));
            }
            out.push(match dialect {
                Dialect::MySql => format!("RENAME TABLE {} TO {}", sql_name(dialect, name), ident(dialect, to)),
                _ => format!("ALTER TABLE {} RENAME TO {}", sql_name(dialect, name), ident(dialect, to)),
            });
        }
        for (table, from, to) in &self.columns {
            let name = table_named(current, table)
                .ok_or_else(|| format!("the current schema has no table {table}"))?;
            out.push(self.column_rename(dialect, name, table, [from, to]));
        }
        Ok(out)
    }

    /// The statements that rename back, on the renamed schema: columns
    /// first, then tables.
    pub(crate) fn down(&self, current: &Schema) -> Vec<String> {
        let dialect = current.dialect();
        let mut out = Vec::new();
        for (table, from, to) in self.columns.iter().rev() {
            let Some(name) = table_named(current, table) else {
                continue;
            };
            out.push(self.column_rename(dialect, name, table, [to, from]));
        }
        for (from, to) in self.tables.iter().rev() {
            let Some(name) = table_named(current, from) else {
                continue;
            };
            let last = name.rsplit_once('.').map_or(name, |(_, last)| last);
            let back = match dialect {
                Dialect::Postgres => last.to_owned(),
                _ => ident(dialect, from),
            };
            out.push(match dialect {
                Dialect::MySql => format!("RENAME TABLE {} TO {back}", ident(dialect, to)),
                _ => format!("ALTER TABLE {} RENAME TO {back}", sibling_sql(dialect, name, to)),
            });
        }
        out
    }

    /// The statement that renames column `names[0]` of `table` (`name` in
    /// the model) to `names[1]`, on the table's new name when it has one.
    fn column_rename(&self, dialect: Dialect, name: &str, table: &str, names: [&String; 2]) -> String {
        let on = match self.tables.iter().find(|(old, _)| old == table) {
            Some((_, new)) => sibling_sql(dialect, name, new),
            None => sql_name(dialect, name),
        };
        let [from, to] = names.map(|n| ident(dialect, n));
        format!("ALTER TABLE {on} RENAME COLUMN {from} TO {to}")
    }

    /// What the renames are, for the file's review comments.
    pub(crate) fn said(&self) -> Vec<String> {
        let tables = self
            .tables
            .iter()
            .map(|(from, to)| format!("renames table {from} to {to} (as hinted)"));
        let columns = self
            .columns
            .iter()
            .map(|(table, from, to)| format!("renames column {table}.{from} to {to} (as hinted)"));
        tables.chain(columns).collect()
    }
}

/// The name of `schema`'s table called `name`: exactly, or (PostgreSQL)
/// `name` without its schema, as an unquoted name reads.
fn table_named<'s>(schema: &'s Schema, name: &str) -> Option<&'s str> {
    let tables = || {
        schema
            .objects()
            .iter()
            .filter(|o| o.kind == ObjectKind::Table)
    };
    tables()
        .find(|o| o.name == name)
        .or_else(|| {
            tables().find(|o| {
                let last = o.name.rsplit_once('.').map_or(o.name.as_str(), |(_, l)| l);
                last == ident(schema.dialect(), name) || last.eq_ignore_ascii_case(name)
            })
        })
        .map(|o| o.name.as_str())
}

/// A table's name as a statement takes it: PostgreSQL's names are written
/// quoted where needed already.
fn sql_name(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::Postgres => name.to_owned(),
        _ => ident(dialect, name),
    }
}

/// `table`'s name with its last part `to`, as the model names it.
fn sibling(dialect: Dialect, table: &str, to: &str) -> String {
    match (dialect, table.rsplit_once('.')) {
        (Dialect::Postgres, Some((schema, _))) => format!("{schema}.{}", ident(dialect, to)),
        _ => to.to_owned(),
    }
}

/// The same, as a statement takes it.
fn sibling_sql(dialect: Dialect, table: &str, to: &str) -> String {
    sql_name(dialect, &sibling(dialect, table, to))
}

/// `name` as an identifier: bare where the server reads it unchanged
/// (PostgreSQL folds unquoted names to lower case), quoted otherwise;
/// MySQL's always in backquotes, as `SHOW CREATE` writes them.
fn ident(dialect: Dialect, name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (dialect != Dialect::Postgres || !name.chars().any(|c| c.is_ascii_uppercase()));
    match dialect {
        Dialect::MySql => mysql_quote(name),
        _ if plain => name.to_owned(),
        _ => quote(name),
    }
}
