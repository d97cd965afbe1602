//! SQLite's table rebuild.

use super::{Altering, quote};
use crate::schema::SchemaObject;

/// A SQLite `CREATE TABLE` statement's column names, in order; `None` for
/// one stowage does not read (`AS SELECT`, a virtual table).
pub(super) fn sqlite_columns(definition: &str) -> Option<Vec<String>> {
    let open = definition.find('(')?;
    let head = definition[..open].to_ascii_uppercase();
    if head.contains(" AS ") || head.contains("VIRTUAL") {
        return None;
    }
    let body = without_comments(&definition[open + 1..definition.rfind(')')?]);
    let body = body.as_str();
    let mut items = Vec::new();
    let (mut depth, mut quote, mut start) = (0usize, None::<char>, 0);
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '[') => quote = Some(']'),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, ',') if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    let constraint = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];
    Some(
        items
            .into_iter()
            .map(str::trim)
            .filter(|item| {
                let first = item
                    .split(|c: char| c.is_whitespace() || c == '(')
                    .next()
                    .unwrap_or_default();
                !constraint.iter().any(|k| first.eq_ignore_ascii_case(k))
            })
            .filter_map(|item| {
                let name = match item.chars().next()? {
                    '"' => item[1..].split('"').next()?.to_owned(),
                    '`' => item[1..].split('`').next()?.to_owned(),
                    '[' => item[1..].split(']').next()?.to_owned(),
                    _ => item.split_whitespace().next()?.to_owned(),
                };
                Some(name)
            })
            .collect(),
    )
}

/// `sql` with its comments (`-- …` to the line's end, `/* … */`) made
/// spaces, quoted text kept.
pub(super) fn without_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            (None, '\'' | '"' | '`') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '[') => {
                quote = Some(']');
                out.push(c);
            }
            (None, '-') if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            (None, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// SQLite's table rebuild (its documentation's "other kinds of table
/// schema changes"), with the table renamed out of the way first, so that
/// the new one holds the wanted statement as written: `legacy_alter_table`
/// keeps the views, triggers and foreign keys that name the table pointing
/// at the name, which the new table then has. Its indexes and triggers,
/// dropped with the old table, are made again by the caller.
pub(super) fn sqlite_rebuild(from: &SchemaObject, to: &SchemaObject) -> Result<Altering, String> {
    let unreadable = || "its definition is not one stowage reads".to_owned();
    let old = sqlite_columns(&from.definition).ok_or_else(unreadable)?;
    let new = sqlite_columns(&to.definition).ok_or_else(unreadable)?;
    let name = &to.name;
    let aside = quote(&format!("{name}__stowage_old"));
    let common: Vec<String> = new
        .iter()
        .filter(|c| old.iter().any(|o| o.eq_ignore_ascii_case(c)))
        .map(|c| quote(c))
        .collect();
    let mut warnings: Vec<String> = old
        .iter()
        .filter(|c| !new.iter().any(|n| n.eq_ignore_ascii_case(c)))
        .map(|c| super::dropped_column(name, c))
        .collect();
    warnings.push(format!(
        "rebuilds table {name}: its rows are copied into the new table"
    ));
    let columns = common.join(", ");
    let mut statements = vec![
        "PRAGMA legacy_alter_table = ON".to_owned(),
        format!("ALTER TABLE {} RENAME TO {aside}", quote(name)),
        to.definition.clone(),
    ];
    if !common.is_empty() {
        statements.push(format!(
            "INSERT INTO {} ({columns}) SELECT {columns} FROM {aside}",
            quote(name)
        ));
    }
    statements.push(format!("DROP TABLE {aside}"));
    statements.push("PRAGMA legacy_alter_table = OFF".to_owned());
    Ok(Altering {
        statements,
        warnings,
    })
}
