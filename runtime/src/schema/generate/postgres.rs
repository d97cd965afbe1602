//! PostgreSQL's `ALTER TABLE` steps, its table rebuild for a new column
//! order and its enum rebuild.

use super::Altering;
use crate::schema::{ObjectKind, Schema, SchemaObject};

/// A PostgreSQL enum whose values are removed or reordered, made again:
/// the old type renamed aside, the new one created, each column of it
/// converted through its text (its default dropped around it, and set as
/// wanted), the old type dropped. Also the tables whose columns move.
pub(super) fn enum_rebuild(
    current: &Schema,
    desired: &Schema,
    from: &SchemaObject,
    to: &SchemaObject,
) -> (Vec<String>, Vec<String>) {
    let name = &from.name;
    let (schema, bare) = name.rsplit_once('.').unwrap_or(("public", name));
    let aside = suffixed(bare, "__stowage_old");
    let mut steps = vec![
        format!("ALTER TYPE {name} RENAME TO {aside}"),
        to.definition.clone(),
    ];
    let mut tables = Vec::new();
    let is_it = |ty: &str| {
        let ty = ty.trim_end_matches("[]");
        ty == bare || ty == name
    };
    for table in current.objects.iter().filter(|o| o.kind == ObjectKind::Table) {
        let Some(parsed) = pg_table(&table.definition) else {
            continue;
        };
        let wanted = desired
            .get(ObjectKind::Table, &table.name)
            .and_then(|t| pg_table(&t.definition));
        for (column, definition) in &parsed.columns {
            let was = pg_column(definition);
            if !is_it(was.ty) {
                continue;
            }
            let alter = |step: String| format!("ALTER TABLE {} ALTER COLUMN {column} {step}", table.name);
            if was.default.is_some() {
                steps.push(alter("DROP DEFAULT".to_owned()));
            }
            let array = if was.ty.ends_with("[]") { "[]" } else { "" };
            steps.push(alter(format!(
                "TYPE {name}{array} USING {column}::text{array}::{name}{array}"
            )));
            let default = wanted
                .as_ref()
                .and_then(|w| w.columns.iter().find(|(c, _)| c == column))
                .and_then(|(_, d)| pg_column(d).default);
            if let Some(default) = default {
                steps.push(alter(format!("SET DEFAULT {default}")));
            }
            tables.push(table.name.clone());
        }
    }
    steps.push(format!("DROP TYPE {schema}.{aside}"));
    (steps, tables)
}

/// `ALTER TYPE … ADD VALUE` for an enum whose values are the old ones with
/// some added (in place, before the value that follows).
pub(super) fn enum_values_added(from: &SchemaObject, to: &SchemaObject) -> Option<Vec<String>> {
    let values = |definition: &str| -> Option<Vec<String>> {
        let list = definition.split_once(" AS ENUM (")?.1.strip_suffix(')')?;
        Some(list.split(", ").map(str::to_owned).collect())
    };
    let (old, new) = (values(&from.definition)?, values(&to.definition)?);
    let kept: Vec<&String> = new.iter().filter(|v| old.contains(v)).collect();
    if kept.len() != old.len() || kept.iter().zip(&old).any(|(a, b)| *a != b) {
        return None;
    }
    let mut steps = Vec::new();
    for (i, value) in new.iter().enumerate() {
        if old.contains(value) {
            continue;
        }
        let place = match new[i + 1..].iter().find(|v| old.contains(v)) {
            Some(next) => format!(" BEFORE {next}"),
            None => String::new(),
        };
        steps.push(format!("ALTER TYPE {} ADD VALUE {value}{place}", from.name));
    }
    Some(steps)
}


/// A PostgreSQL table definition as stowage's catalogue query writes it:
/// `CREATE TABLE name (` items, one a line, `)` and what follows, then the
/// columns' settings, each an `ALTER TABLE ONLY` of its own.
pub(super) struct PgTable<'d> {
    head: &'d str,
    columns: Vec<(&'d str, &'d str)>,
    constraints: Vec<(&'d str, &'d str)>,
    tail: &'d str,
    /// Each setting's statement past `ALTER TABLE ONLY `.
    settings: Vec<&'d str>,
}

/// The column a setting's statement (past `ALTER TABLE ONLY `) is of, and
/// what it does.
fn setting_parts(setting: &str) -> Option<(&str, &str)> {
    split_ident(setting.split_once(" ALTER COLUMN ")?.1)
}

/// The statement that undoes a column setting (past `ALTER TABLE ONLY `),
/// or why there is none.
fn reset_setting(table: &str, setting: &str) -> Result<String, String> {
    let (column, step) = setting_parts(setting)
        .ok_or_else(|| format!("its column setting `{setting}` is not one stowage reads"))?;
    let reset = if let Some(options) = step.strip_prefix("SET (") {
        let names: Vec<&str> = options
            .trim_end_matches(')')
            .split(", ")
            .map(|option| option.split('=').next().unwrap_or(option))
            .collect();
        format!("RESET ({})", names.join(", "))
    } else if step.starts_with("SET STATISTICS ") {
        "SET STATISTICS -1".to_owned()
    } else {
        return Err(format!(
            "the storage of column {column} goes back to its type's, which stowage cannot name"
        ));
    };
    Ok(format!("ALTER TABLE ONLY {table} ALTER COLUMN {column} {reset}"))
}

pub(super) fn pg_table(definition: &str) -> Option<PgTable<'_>> {
    let (head, rest) = definition.split_once(" (")?;
    let (body, tail) = match rest.strip_prefix(')') {
        Some(tail) => ("", tail),
        None => {
            let end = rest.rfind("\n)")?;
            (rest[..end].strip_prefix("\n    ")?, &rest[end + 2..])
        }
    };
    const SETTING: &str = ";\nALTER TABLE ONLY ";
    let (tail, settings) = match tail.split_once(SETTING) {
        Some((tail, settings)) => (tail, settings.split(SETTING).collect()),
        None => (tail, Vec::new()),
    };
    let mut table = PgTable {
        head,
        columns: Vec::new(),
        constraints: Vec::new(),
        tail,
        settings,
    };
    if body.is_empty() {
        return Some(table);
    }
    for item in body.split(",\n    ") {
        match item.strip_prefix("CONSTRAINT ") {
            Some(rest) => {
                let (name, definition) = split_ident(rest)?;
                table.constraints.push((name, definition));
            }
            None => table.columns.push(split_ident(item)?),
        }
    }
    Some(table)
}

/// An identifier (quoted or not) at the start of `text`, and the rest after
/// the space that follows it.
pub(super) fn split_ident(text: &str) -> Option<(&str, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut end = 0;
        let bytes = quoted.as_bytes();
        while end < bytes.len() {
            if bytes[end] == b'"' {
                if bytes.get(end + 1) == Some(&b'"') {
                    end += 2;
                    continue;
                }
                break;
            }
            end += 1;
        }
        let name = &text[..end + 2];
        return Some((name, text[end + 2..].trim_start()));
    }
    Some(text.split_once(' ').unwrap_or((text, "")))
}

/// A PostgreSQL column's definition, cut into its parts.
#[derive(PartialEq, Eq)]
pub(super) struct PgColumn<'d> {
    ty: &'d str,
    identity: &'d str,
    default: Option<&'d str>,
    generated: Option<&'d str>,
    not_null: bool,
}

pub(super) fn pg_column(definition: &str) -> PgColumn<'_> {
    let (rest, not_null) = match definition.strip_suffix(" NOT NULL") {
        Some(rest) => (rest, true),
        None => (definition, false),
    };
    let (rest, generated) = match rest.find(" GENERATED ALWAYS AS (") {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let (rest, default) = match rest.split_once(" DEFAULT ") {
        Some((rest, default)) => (rest, Some(default)),
        None => (rest, None),
    };
    let (ty, identity) = match rest.find(" GENERATED ") {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    PgColumn {
        ty,
        identity,
        default,
        generated,
        not_null,
    }
}

/// Both tables read, or why not.
fn pg_tables<'d>(
    from: &'d SchemaObject,
    to: &'d SchemaObject,
) -> Result<(PgTable<'d>, PgTable<'d>), String> {
    let old = pg_table(&from.definition).ok_or_else(unreadable_table)?;
    Ok((old, pg_table(&to.definition).ok_or_else(unreadable_table)?))
}

/// Why a table definition cannot be altered: stowage does not read it.
fn unreadable_table() -> String {
    "its definition is not one stowage reads".to_owned()
}

/// `ALTER TABLE` steps for PostgreSQL, or the table rebuilt
/// ([`postgres_rebuild`]) where its columns would end in another order.
pub(super) fn postgres_alter(
    schemas: [&Schema; 2],
    from: &SchemaObject,
    to: &SchemaObject,
) -> Result<Altering, String> {
    let (old, new) = pg_tables(from, to)?;
    if pg_rebuilds(from, to) {
        return postgres_rebuild(schemas, &old, &new, to);
    }
    if old.head != new.head || old.tail != new.tail {
        return Err("its kind, partitioning, parents or storage options change".to_owned());
    }
    let table = &to.name;
    let mut statements = Vec::new();
    let mut warnings = Vec::new();
    let alter = |step: String| format!("ALTER TABLE {table} {step}");
    for (name, definition) in &old.constraints {
        if !new.constraints.contains(&(name, definition)) {
            statements.push(alter(format!("DROP CONSTRAINT {name}")));
        }
    }
    for (name, _) in &old.columns {
        if !new.columns.iter().any(|(n, _)| n == name) {
            warnings.push(super::dropped_column(table, name));
            statements.push(alter(format!("DROP COLUMN {name}")));
        }
    }
    for (name, definition) in &new.columns {
        let Some((_, before)) = old.columns.iter().find(|(n, _)| n == name) else {
            let column = pg_column(definition);
            if column.not_null && column.default.is_none() && column.identity.is_empty() {
                warnings.push(format!(
                    "adds {table}.{name} NOT NULL without a default: fails if the table has rows"
                ));
            }
            statements.push(alter(format!("ADD COLUMN {name} {definition}")));
            continue;
        };
        if before == definition {
            continue;
        }
        let (was, will) = (pg_column(before), pg_column(definition));
        if was.generated != will.generated {
            return Err(format!("the generated expression of column {name} changes"));
        }
        let column = |step: String| alter(format!("ALTER COLUMN {name} {step}"));
        let retyped = was.ty != will.ty;
        if was.default.is_some() && (retyped || was.default != will.default) {
            statements.push(column("DROP DEFAULT".to_owned()));
        }
        if was.identity != will.identity && !was.identity.is_empty() {
            statements.push(column("DROP IDENTITY".to_owned()));
        }
        if retyped {
            warnings.push(format!(
                "changes the type of {table}.{name} from {} to {}: check the USING conversion",
                was.ty, will.ty
            ));
            let using = converted(schemas, name, was.ty, will.ty);
            statements.push(column(format!("TYPE {} USING {using}", will.ty)));
        }
        if let Some(default) = will.default
            && (retyped || was.default != will.default)
        {
            statements.push(column(format!("SET DEFAULT {default}")));
        }
        if was.identity != will.identity && !will.identity.is_empty() {
            statements.push(column(format!("ADD{}", will.identity)));
        }
        match (was.not_null, will.not_null) {
            (false, true) => {
                warnings.push(format!(
                    "makes {table}.{name} NOT NULL: fails if a row holds NULL there"
                ));
                statements.push(column("SET NOT NULL".to_owned()));
            }
            (true, false) => statements.push(column("DROP NOT NULL".to_owned())),
            _ => {}
        }
    }
    for (name, definition) in &new.constraints {
        if !old.constraints.contains(&(name, definition)) {
            statements.push(alter(format!("ADD CONSTRAINT {name} {definition}")));
        }
    }
    // A dropped column's settings went with it.
    for setting in &old.settings {
        let kept = |(column, _): (&str, &str)| new.columns.iter().any(|(n, _)| *n == column);
        if !new.settings.contains(setting) && setting_parts(setting).is_none_or(kept) {
            statements.push(reset_setting(table, setting)?);
        }
    }
    for setting in &new.settings {
        if !old.settings.contains(setting) {
            statements.push(format!("ALTER TABLE ONLY {setting}"));
        }
    }
    Ok(Altering {
        statements,
        warnings,
    })
}

/// Whether `ALTER TABLE` leaves the columns in another order than wanted
/// (PostgreSQL adds a column last): then the table is rebuilt.
pub(super) fn pg_rebuilds(from: &SchemaObject, to: &SchemaObject) -> bool {
    let (Some(old), Some(new)) = (pg_table(&from.definition), pg_table(&to.definition)) else {
        return false;
    };
    let kept: Vec<&str> = old
        .columns
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| new.columns.iter().any(|(m, _)| m == n))
        .collect();
    let added = new.columns.iter().map(|(n, _)| *n).filter(|n| !kept.contains(n));
    let after: Vec<&str> = kept.iter().copied().chain(added).collect();
    let wanted: Vec<&str> = new.columns.iter().map(|(n, _)| *n).collect();
    after != wanted
}

/// `ident` (quoted or not) with `suffix` added to the name.
pub(super) fn suffixed(ident: &str, suffix: &str) -> String {
    match ident.strip_suffix('"') {
        Some(quoted) => format!("{quoted}{suffix}\""),
        None => format!("{ident}{suffix}"),
    }
}

/// A PostgreSQL table made again with its columns in the wanted order:
/// the old one renamed aside with the indexes of its constraints, the new
/// one created as wanted, the rows copied (identity values kept, and their
/// sequences moved past them), the old one dropped. What is on the table
/// (indexes, foreign keys, triggers, comments, sequence owners) and the
/// views reading it are dropped before and made again after, by the
/// caller.
fn postgres_rebuild(
    schemas: [&Schema; 2],
    old: &PgTable<'_>,
    new: &PgTable<'_>,
    to: &SchemaObject,
) -> Result<Altering, String> {
    let table = &to.name;
    let (schema, bare) = table.rsplit_once('.').ok_or_else(unreadable_table)?;
    let aside = suffixed(bare, "__stowage_old");
    let mut statements = vec![format!("ALTER TABLE {table} RENAME TO {aside}")];
    for (name, definition) in &old.constraints {
        let indexed = ["PRIMARY KEY", "UNIQUE", "EXCLUDE"];
        if indexed.iter().any(|k| definition.starts_with(k)) {
            statements.push(format!(
                "ALTER INDEX {schema}.{name} RENAME TO {}",
                suffixed(name, "__stowage_old")
            ));
        }
    }
    statements.push(to.definition.clone());
    let copied: Vec<&str> = new
        .columns
        .iter()
        .filter(|(name, definition)| {
            pg_column(definition).generated.is_none() && old.columns.iter().any(|(n, _)| n == name)
        })
        .map(|(name, _)| *name)
        .collect();
    let mut warnings: Vec<String> = old
        .columns
        .iter()
        .filter(|(name, _)| !new.columns.iter().any(|(n, _)| n == name))
        .map(|(name, _)| super::dropped_column(table, name))
        .collect();
    warnings.push(format!(
        "rebuilds table {table} to put its columns in the wanted order: its rows are copied \
         into the new table"
    ));
    // A column whose type changes is converted as `ALTER … TYPE` would.
    let mut values = Vec::new();
    for name in &copied {
        match (column_type(&old.columns, name), column_type(&new.columns, name)) {
            (Some(was), Some(will)) if was != will => {
                warnings.push(format!(
                    "changes the type of {table}.{name} from {was} to {will}: check the \
                     conversion of its rows in the copy"
                ));
                values.push(converted(schemas, name, was, will));
            }
            _ => values.push((*name).to_owned()),
        }
    }
    if !copied.is_empty() {
        statements.push(format!(
            "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {schema}.{aside}",
            copied.join(", "),
            values.join(", ")
        ));
    }
    for (name, definition) in &new.columns {
        if !pg_column(definition).identity.is_empty() && copied.contains(name) {
            statements.push(format!(
                "SELECT setval(pg_get_serial_sequence('{}', '{}'), coalesce(max({name}), 0) + 1, \
                 false) FROM {table}",
                table.replace('\'', "''"),
                name.replace('\'', "''")
            ));
        }
    }
    statements.push(format!("DROP TABLE {schema}.{aside}"));
    Ok(Altering {
        statements,
        warnings,
    })
}

/// The type of column `name` among `columns` (name, definition).
fn column_type<'d>(columns: &[(&'d str, &'d str)], name: &str) -> Option<&'d str> {
    let found = columns.iter().find(|(n, _)| *n == name);
    found.map(|(_, definition)| pg_column(definition).ty)
}

/// Column `name`'s values of type `was` cast to `will`, as `USING` and a
/// rebuild's copy convert them. No cast reaches an enum, or leaves one,
/// but text's.
fn converted(schemas: [&Schema; 2], name: &str, was: &str, will: &str) -> String {
    let target = will.split(" COLLATE ").next().unwrap_or(will);
    let via = match is_enum(schemas, target) || is_enum(schemas, was) {
        true => format!("::text{}", if target.ends_with("[]") { "[]" } else { "" }),
        false => String::new(),
    };
    format!("{name}{via}::{target}")
}

/// Whether `ty` (a column's type, an array's too) is an enum of either
/// schema.
fn is_enum(schemas: [&Schema; 2], ty: &str) -> bool {
    let base = ty.split(" COLLATE ").next().unwrap_or(ty).trim_end_matches("[]");
    schemas.iter().any(|schema| {
        schema.objects.iter().any(|o| {
            o.kind == ObjectKind::Type
                && o.definition.contains(" AS ENUM ")
                && (o.name == base || o.name.rsplit_once('.').is_some_and(|(_, n)| n == base))
        })
    })
}
