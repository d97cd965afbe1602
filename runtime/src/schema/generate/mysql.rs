//! MySQL's `ALTER TABLE` from two `SHOW CREATE TABLE` renderings.

use super::Altering;
use crate::schema::SchemaObject;

/// A MySQL table as `SHOW CREATE TABLE` renders it: columns, keys and
/// constraints one a line, then the table's options.
pub(super) struct MyTable<'d> {
    columns: Vec<(&'d str, &'d str)>,
    keys: Vec<&'d str>,
    constraints: Vec<(&'d str, &'d str)>,
    options: &'d str,
}

pub(super) fn my_table(definition: &str) -> Option<MyTable<'_>> {
    let (_, rest) = definition.split_once(" (\n")?;
    let end = rest.rfind("\n)")?;
    let (body, options) = (&rest[..end], rest[end + 2..].trim());
    let mut table = MyTable {
        columns: Vec::new(),
        keys: Vec::new(),
        constraints: Vec::new(),
        options,
    };
    for line in body.lines() {
        let item = line.trim().trim_end_matches(',');
        if let Some(quoted) = item.strip_prefix('`') {
            let close = quoted.find('`')? + 2;
            table.columns.push((&item[..close], item));
        } else if let Some(rest) = item.strip_prefix("CONSTRAINT ") {
            let close = rest[1..].find('`')? + 2;
            table.constraints.push((&rest[..close], item));
        } else {
            table.keys.push(item);
        }
    }
    Some(table)
}

/// `ALTER TABLE` steps for MySQL: constraints and keys dropped, columns
/// dropped, added and changed in place (`AFTER` keeps the wanted order),
/// keys and constraints added, the options set.
pub(super) fn mysql_alter(from: &SchemaObject, to: &SchemaObject) -> Result<Altering, String> {
    let unreadable = || "its definition is not one stowage reads".to_owned();
    let (old, new) = (
        my_table(&from.definition).ok_or_else(unreadable)?,
        my_table(&to.definition).ok_or_else(unreadable)?,
    );
    let table = mysql_quote(&to.name);
    let mut steps: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    // Foreign keys are dropped before and added after every table's
    // change ([`mysql_foreign_keys`]).
    let (old_checks, new_checks) = (constraints(&old, false), constraints(&new, false));
    for (name, line) in &old_checks {
        if !new_checks.contains(&(name, line)) {
            steps.push(format!("DROP CONSTRAINT {name}"));
        }
    }
    // The keys gone dropped, the new ones added.
    let (dropped, added) = key_changes(&old.keys, &new.keys);
    for key in &dropped {
        match key.strip_prefix("PRIMARY KEY") {
            Some(_) => steps.push("DROP PRIMARY KEY".to_owned()),
            None => {
                let name = key.split('`').nth(1).ok_or_else(unreadable)?;
                steps.push(format!("DROP KEY {}", mysql_quote(name)));
            }
        }
    }
    let mut order: Vec<&str> = Vec::new();
    for (name, _) in &old.columns {
        match new.columns.iter().any(|(n, _)| n == name) {
            true => order.push(name),
            false => {
                warnings.push(super::dropped_column(&to.name, name));
                steps.push(format!("DROP COLUMN {name}"));
            }
        }
    }
    for (i, (name, line)) in new.columns.iter().enumerate() {
        let place = match i {
            0 => " FIRST".to_owned(),
            _ => format!(" AFTER {}", new.columns[i - 1].0),
        };
        match old.columns.iter().find(|(n, _)| n == name) {
            None => {
                steps.push(format!("ADD COLUMN {line}{place}"));
                order.insert(i.min(order.len()), name);
            }
            Some((_, before)) => {
                let at = order.iter().position(|n| n == name);
                if before != line || at != Some(i) {
                    if before != line {
                        warnings.push(format!(
                            "changes column {}.{name} from `{before}` to `{line}`: check that its \
                             values convert",
                            to.name
                        ));
                    }
                    steps.push(format!("MODIFY COLUMN {line}{place}"));
                    if let Some(at) = at {
                        order.remove(at);
                    }
                    order.insert(i.min(order.len()), name);
                }
            }
        }
    }
    for key in &added {
        steps.push(format!("ADD {key}"));
    }
    for (name, line) in &new_checks {
        if !old_checks.contains(&(name, line)) {
            steps.push(format!("ADD {line}"));
        }
    }
    if old.options != new.options {
        // An option left out keeps its value: a comment is emptied.
        match old.options.contains(" COMMENT=") && !new.options.contains(" COMMENT=") {
            true => steps.push(format!("{} COMMENT=''", new.options)),
            false => steps.push(new.options.to_owned()),
        }
    }
    // The server checks after each statement that the auto-increment
    // column is the first of a key (error 1075): where that column or its
    // keys change, every step goes in one statement.
    let statements = match moves_auto_increment(&old, &new, &dropped, &added) {
        true => vec![format!("ALTER TABLE {table}\n  {}", steps.join(",\n  "))],
        false => steps
            .into_iter()
            .map(|step| format!("ALTER TABLE {table} {step}"))
            .collect(),
    };
    Ok(Altering {
        statements,
        warnings,
    })
}

/// Whether turning `old` into `new` adds, drops or changes an
/// auto-increment column, or a key one of them is in.
fn moves_auto_increment(old: &MyTable<'_>, new: &MyTable<'_>, dropped: &[&str], added: &[&str]) -> bool {
    [auto_increment(old), auto_increment(new)]
        .into_iter()
        .flatten()
        .any(|name| {
            column_line(old, name) != column_line(new, name)
                || dropped.iter().chain(added).any(|key| listed(key).contains(&name))
        })
}

/// The name of a table's auto-increment column, unquoted.
fn auto_increment<'d>(table: &MyTable<'d>) -> Option<&'d str> {
    let found = table.columns.iter().find(|(_, line)| line.contains(" AUTO_INCREMENT"));
    found.map(|(name, _)| name.trim_matches('`'))
}

/// The line of a table's column `name` (unquoted).
fn column_line<'d>(table: &MyTable<'d>, name: &str) -> Option<&'d str> {
    let found = table.columns.iter().find(|(n, _)| n.trim_matches('`') == name);
    found.map(|(_, line)| *line)
}

/// The keys to drop and to add to turn `old` into `new`: those that
/// differ (the model lists keys in one order whatever order the server
/// made them in, so the order needs no steps).
fn key_changes<'d>(old: &[&'d str], new: &[&'d str]) -> (Vec<&'d str>, Vec<&'d str>) {
    let dropped = old.iter().copied().filter(|k| !new.contains(k)).collect();
    let added = new.iter().copied().filter(|k| !old.contains(k)).collect();
    (dropped, added)
}

/// A table's foreign keys that change: the statements that drop them,
/// run before any table is altered (a key they use may go), and those that
/// add them, run after every table is (the key they need may come). An
/// unchanged one goes and comes back too where a key it may use as its
/// index is dropped: the server refuses to drop that key (error 1553).
pub(super) fn mysql_foreign_keys(from: &SchemaObject, to: &SchemaObject) -> (Vec<String>, Vec<String>) {
    let (Some(old), Some(new)) = (my_table(&from.definition), my_table(&to.definition)) else {
        return (Vec::new(), Vec::new());
    };
    let table = mysql_quote(&to.name);
    let (dropped_keys, _) = key_changes(&old.keys, &new.keys);
    let (old, new) = (constraints(&old, true), constraints(&new, true));
    let over_dropped_key: Vec<&(&str, &str)> = old
        .iter()
        .filter(|(_, line)| {
            let columns = listed(line);
            dropped_keys.iter().any(|key| listed(key).starts_with(&columns))
        })
        .collect();
    let drops = old
        .iter()
        .filter(|constraint| !new.contains(constraint) || over_dropped_key.contains(constraint))
        .map(|(name, _)| format!("ALTER TABLE {table} DROP FOREIGN KEY {name}"))
        .collect();
    let adds = new
        .iter()
        .filter(|constraint| !old.contains(constraint) || over_dropped_key.contains(constraint))
        .map(|(_, line)| format!("ALTER TABLE {table} ADD {line}"))
        .collect();
    (drops, adds)
}

/// The names in the first parenthesised list of a key's or constraint's
/// line, its columns: `a` and `b` for ``KEY `k` (`a`,`b`(10))``.
fn listed(line: &str) -> Vec<&str> {
    let (mut names, mut depth, mut quoted_at) = (Vec::new(), None::<usize>, None);
    for (i, c) in line.char_indices() {
        match (c, quoted_at) {
            ('`', None) => quoted_at = Some(i + 1),
            ('`', Some(from)) => {
                if depth == Some(1) {
                    names.push(&line[from..i]);
                }
                quoted_at = None;
            }
            (_, Some(_)) => {}
            ('(', None) => depth = Some(depth.map_or(1, |d| d + 1)),
            (')', None) => match depth {
                Some(1) => break,
                Some(d) => depth = Some(d - 1),
                None => {}
            },
            _ => {}
        }
    }
    names
}

/// A table's foreign keys, or its other constraints (checks).
fn constraints<'d>(table: &MyTable<'d>, foreign: bool) -> Vec<(&'d str, &'d str)> {
    table
        .constraints
        .iter()
        .copied()
        .filter(|(_, line)| line.contains(" FOREIGN KEY ") == foreign)
        .collect()
}

/// `name` as a MySQL identifier.
pub(super) fn mysql_quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::listed;

    #[test]
    fn the_columns_of_keys_and_foreign_keys() {
        assert_eq!(listed("UNIQUE KEY `t_pid` (`pid`,`id`)"), ["pid", "id"]);
        assert_eq!(listed("KEY `k(1)` (`a`,`b`(10)) COMMENT 'x'"), ["a", "b"]);
        assert_eq!(listed("PRIMARY KEY (`id`)"), ["id"]);
        assert_eq!(
            listed("CONSTRAINT `t_p` FOREIGN KEY (`a`, `n`) REFERENCES `p` (`k`, `n`)"),
            ["a", "n"]
        );
        assert!(listed("KEY `broken`").is_empty());
    }
}
