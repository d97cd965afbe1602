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
    for (name, line) in &old.constraints {
        if !new.constraints.contains(&(name, line)) {
            match line.contains(" FOREIGN KEY ") {
                true => steps.push(format!("DROP FOREIGN KEY {name}")),
                false => steps.push(format!("DROP CONSTRAINT {name}")),
            }
        }
    }
    // Keys from the first that differs on, dropped and added in order:
    // the server lists them in the order they were made.
    let same = old.keys.iter().zip(&new.keys).take_while(|(a, b)| a == b).count();
    for key in &old.keys[same..] {
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
    for key in &new.keys[same..] {
        steps.push(format!("ADD {key}"));
    }
    for (name, line) in &new.constraints {
        if !old.constraints.contains(&(name, line)) {
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
    Ok(Altering {
        statements: steps
            .into_iter()
            .map(|step| format!("ALTER TABLE {table} {step}"))
            .collect(),
        warnings,
    })
}

/// `name` as a MySQL identifier.
pub(super) fn mysql_quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
