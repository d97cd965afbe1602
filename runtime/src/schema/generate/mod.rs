//! [`Schema::migration_to`]: the migration that turns one schema into
//! another, as typed [`Change`]s rendered per dialect.
//!
//! Objects the two schemas hold alike are left alone. Others are created,
//! dropped, replaced (dropped and created again, or re-run where the
//! server's statement replaces: `CREATE OR REPLACE FUNCTION`, `COMMENT ON`,
//! `OWNED BY`) or, for a table, altered: PostgreSQL and MySQL by `ALTER
//! TABLE` column, key and constraint steps (PostgreSQL rebuilding the table
//! when its columns change order), SQLite by its documented table rebuild,
//! the rows kept. What cannot be written is said in the file and in
//! [`Generated::warnings`], never guessed.

mod mysql;
mod postgres;
#[cfg(feature = "any")]
mod renames;
mod sqlite;

use super::{ObjectKind, Schema, SchemaObject, dependency_order, mentions};
use crate::Dialect;
use mysql::{mysql_alter, mysql_foreign_keys, mysql_quote};
use postgres::{enum_rebuild, enum_values_added, pg_rebuilds, postgres_alter};
#[cfg(feature = "any")]
pub use renames::Renames;
use sqlite::sqlite_rebuild;

/// One change between two schemas ([`Schema::changes_to`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// An object only the desired schema has.
    Create(SchemaObject),
    /// An object only the current schema has.
    Drop(SchemaObject),
    /// An object both have, defined otherwise: made again.
    Replace {
        /// As it is.
        from: SchemaObject,
        /// As wanted.
        to: SchemaObject,
    },
    /// A table both have, defined otherwise: altered in place, its rows
    /// kept.
    AlterTable {
        /// As it is.
        from: SchemaObject,
        /// As wanted.
        to: SchemaObject,
    },
}

/// A generated migration ([`Schema::migration_to`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Generated {
    /// The SQL that turns the current schema into the desired one; empty
    /// when they are equal.
    pub up: String,
    /// The SQL that turns it back.
    pub down: String,
    /// What `up` does that can lose data or needs a look (a dropped table
    /// or column, a type change, `NOT NULL` on existing rows, a change
    /// stowage could not write), each also a comment at the top of `up`.
    pub warnings: Vec<String>,
    /// Whether `up` must run outside a transaction (PostgreSQL: an enum
    /// value added, which a transaction cannot use before it commits).
    pub no_transaction: bool,
}

impl Generated {
    /// Whether the two schemas are equal: nothing to write.
    pub fn is_empty(&self) -> bool {
        self.up.is_empty()
    }
}

impl Schema {
    /// What turns this schema into `desired`, object by object, in
    /// [`Schema::objects`]'s order.
    pub fn changes_to(&self, desired: &Schema) -> Vec<Change> {
        let mut changes = Vec::new();
        for object in &self.objects {
            match desired.get(object.kind, &object.name) {
                None => changes.push(Change::Drop(object.clone())),
                Some(wanted) if wanted.definition != object.definition => {
                    let (from, to) = (object.clone(), wanted.clone());
                    changes.push(match object.kind {
                        ObjectKind::Table => Change::AlterTable { from, to },
                        _ => Change::Replace { from, to },
                    });
                }
                Some(_) => {}
            }
        }
        for object in &desired.objects {
            if self.get(object.kind, &object.name).is_none() {
                changes.push(Change::Create(object.clone()));
            }
        }
        changes
    }

    /// The migration that turns this schema into `desired`, and back:
    /// drops first (dependents before what they depend on), then creates,
    /// replacements and table changes in dependency order. Views that read
    /// a changed table are dropped and made again around it on
    /// PostgreSQL. A drop and an add are never taken for a rename: the
    /// warnings say where one may be meant.
    ///
    /// ```no_run
    /// # static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("migrations");
    /// # async fn example(pool: &sqlx::PgPool, dev: &sqlx::PgPool) -> Result<(), stowage::Error> {
    /// let current = MIGRATOR.dump(pool).await?;
    /// let desired = MIGRATOR.dump(dev).await?;
    /// let generated = current.migration_to(&desired);
    /// for warning in &generated.warnings {
    ///     eprintln!("review: {warning}");
    /// }
    /// println!("{}", generated.up);
    /// # Ok(()) }
    /// ```
    pub fn migration_to(&self, desired: &Schema) -> Generated {
        compose([self, desired], [desired, self], [&[], &[]], Vec::new())
    }
}

/// A migration: the up from `ups[0]` to `ups[1]` after `first[0]`, the
/// down from `downs[0]` to `downs[1]` after `first[1]` (a rename's
/// statements, the schemas on either side of it read back from the
/// server), `notes` among its review comments.
pub(crate) fn compose(
    ups: [&Schema; 2],
    downs: [&Schema; 2],
    first: [&[String]; 2],
    notes: Vec<String>,
) -> Generated {
    let (up, warnings, no_transaction) = script(ups[0], ups[1]);
    if up.is_empty() && first[0].is_empty() {
        return Generated::default();
    }
    let (down, _, _) = script(downs[0], downs[1]);
    let warnings: Vec<String> = notes.into_iter().chain(warnings).collect();
    let mut text = String::new();
    for warning in &warnings {
        text.push_str(&format!("-- review: {warning}\n"));
    }
    if no_transaction {
        text.insert_str(0, "-- stowage:no-transaction\n");
    }
    if !text.is_empty() {
        text.push('\n');
    }
    let [up_first, down_first] = first.map(|statements| {
        statements
            .iter()
            .cloned()
            .map(statement)
            .collect::<String>()
    });
    Generated {
        up: text + &up_first + &up,
        down: down_first + &down,
        warnings,
        no_transaction,
    }
}

/// The warning for a column dropped, which may be meant as a rename.
fn dropped_column(table: &str, column: &str) -> String {
    format!(
        "drops column {table}.{column} and its values (if it is renamed, say so: `--rename \
         {table}.{column}=new_name`, Renames::column)"
    )
}

/// The statements that turn `current` into `desired`, what they warn of,
/// and whether they must run outside a transaction.
fn script(current: &Schema, desired: &Schema) -> (String, Vec<String>, bool) {
    let dialect = current.dialect;
    let changes = current.changes_to(desired);
    let mut warnings = Vec::new();
    let mut no_transaction = false;
    // What is dropped (from `current`) and made (from `desired`).
    let mut dropped: Vec<SchemaObject> = Vec::new();
    let mut made: Vec<SchemaObject> = Vec::new();
    let mut altered: Vec<(SchemaObject, SchemaObject)> = Vec::new();
    let mut replaced_in_place: Vec<SchemaObject> = Vec::new();
    // Objects dropped to be created again: dropped before they are made.
    let mut remade: Vec<SchemaObject> = Vec::new();
    // Tables whose columns move to a remade enum.
    let mut enum_tables: Vec<String> = Vec::new();
    let mut steps_of_types: Vec<String> = Vec::new();
    for change in &changes {
        match change {
            Change::Create(object) => made.push(object.clone()),
            Change::Drop(object) => {
                if object.kind == ObjectKind::Table {
                    warnings.push(format!("drops table {} and its rows", object.name));
                }
                dropped.push(object.clone());
            }
            Change::Replace { from, to } => match replace_in_place(dialect, from, to) {
                Replace::Rerun => replaced_in_place.push(to.clone()),
                Replace::Steps(steps) => {
                    no_transaction = true;
                    steps_of_types.extend(steps);
                }
                Replace::DropAndCreate => {
                    dropped.push(from.clone());
                    remade.push(from.clone());
                    made.push(to.clone());
                }
                Replace::EnumRebuild => {
                    let (steps, tables) = enum_rebuild(current, desired, from, to);
                    warnings.push(format!(
                        "makes type {} again with the values {}: a row holding a value it no \
                         longer has makes the migration fail",
                        to.name,
                        to.definition.split_once(" AS ENUM ").map_or("", |(_, v)| v)
                    ));
                    steps_of_types.extend(steps);
                    enum_tables.extend(tables);
                }
            },
            Change::AlterTable { from, to } => altered.push((from.clone(), to.clone())),
        }
    }
    // A drop and an add of one kind may be a rename.
    for object in dropped.iter().filter(|o| o.kind == ObjectKind::Table) {
        if let Some(added) = made
            .iter()
            .find(|m| m.kind == ObjectKind::Table && current.get(m.kind, &m.name).is_none())
        {
            warnings.push(format!(
                "table {} is dropped and {} created: if it is a rename, say so to keep its rows \
                 (`--rename {}={}`, Renames::table)",
                object.name,
                added.name,
                object.name,
                added.name.rsplit('.').next().unwrap_or(&added.name)
            ));
        }
    }
    // Objects that go with a table being rebuilt or changed: views reading
    // it on PostgreSQL; on SQLite its indexes and triggers, which its
    // rebuild drops.
    let mut dependents: Vec<SchemaObject> = Vec::new();
    let changed_tables: Vec<&str> = altered
        .iter()
        .map(|(from, _)| from.name.as_str())
        .chain(dropped.iter().filter(|o| o.kind == ObjectKind::Table).map(|o| o.name.as_str()))
        .collect();
    // What goes with a PostgreSQL table rebuilt (its columns in another
    // order), as with SQLite's, and with a view dropped: everything on it
    // and naming it (a materialized view's indexes, say).
    let on_kinds = |kind: ObjectKind| {
        matches!(
            kind,
            ObjectKind::Index
                | ObjectKind::Constraint
                | ObjectKind::SequenceOwner
                | ObjectKind::Trigger
                | ObjectKind::Comment
        )
    };
    let is_view = |kind: ObjectKind| matches!(kind, ObjectKind::View | ObjectKind::MaterializedView);
    let mut carried: Vec<String> = altered
        .iter()
        .filter(|(from, to)| dialect == Dialect::Postgres && pg_rebuilds(from, to))
        .map(|(from, _)| from.name.clone())
        .collect();
    let mut names: Vec<String> = changed_tables.iter().map(|n| (*n).to_owned()).collect();
    names.extend(enum_tables.iter().cloned());
    if dialect != Dialect::Sqlite {
        // A function dropped to be made again takes what calls it along.
        for function in dropped.iter().filter(|o| o.kind == ObjectKind::Function) {
            names.push(function.name.clone());
            carried.push(function.name.clone());
        }
        // Views dropped or made again take the views reading them along.
        for view in dropped.iter().filter(|o| is_view(o.kind)) {
            names.push(view.name.clone());
            carried.push(view.name.clone());
        }
    }
    loop {
        let more: Vec<SchemaObject> = current
            .objects
            .iter()
            .filter(|o| match dialect {
                Dialect::Sqlite => {
                    matches!(o.kind, ObjectKind::Index | ObjectKind::Trigger)
                        && names.iter().any(|name| on_table(&o.definition, name))
                }
                _ => {
                    (on_kinds(o.kind) && carried.iter().any(|name| mentions(&o.definition, name)))
                        || (is_view(o.kind) && names.iter().any(|name| mentions(&o.definition, name)))
                }
            })
            .filter(|o| !dropped.contains(o) && !dependents.contains(o))
            .cloned()
            .collect();
        if more.is_empty() {
            break;
        }
        for object in more {
            names.push(object.name.clone());
            if is_view(object.kind) {
                carried.push(object.name.clone());
            }
            dependents.push(object);
        }
        if dialect == Dialect::Sqlite {
            break;
        }
    }
    // A sequence a dropped table owns, kept (a table renamed without a
    // hint keeps its sequence's name): let go of first, or the drop takes
    // it along.
    if dialect == Dialect::Postgres {
        let tables: Vec<String> = dropped
            .iter()
            .filter(|o| o.kind == ObjectKind::Table)
            .map(|o| o.name.clone())
            .collect();
        for owner in current.objects.iter().filter(|o| {
            o.kind == ObjectKind::SequenceOwner
                && tables.iter().any(|table| mentions(&o.definition, table))
        }) {
            if !dropped.contains(owner) && !dependents.contains(owner) {
                dependents.push(owner.clone());
            }
        }
    }
    for object in &dependents {
        dropped.push(object.clone());
        if let Some(wanted) = desired.get(object.kind, &object.name)
            && !made.contains(wanted)
        {
            made.push(wanted.clone());
        }
    }

    let mut out: Vec<String> = Vec::new();
    // Drops, dependents first; what tables use (functions, sequences,
    // types, schemas, extensions) only once the tables are changed.
    let late = |kind: ObjectKind| {
        matches!(
            kind,
            ObjectKind::Function
                | ObjectKind::Sequence
                | ObjectKind::Type
                | ObjectKind::Schema
                | ObjectKind::Extension
        )
    };
    let mut drops_first: Vec<&SchemaObject> = dependency_order(&dropped);
    drops_first.reverse();
    let (drops_late, drops_first): (Vec<&SchemaObject>, Vec<&SchemaObject>) = drops_first
        .into_iter()
        .partition(|o| late(o.kind) && !remade.contains(o));
    for object in drops_first {
        out.push(statement(drop_sql(dialect, object)));
    }
    // MySQL's foreign keys of changed tables: out of the way of the keys
    // they use while the tables change.
    let mut foreign_adds: Vec<String> = Vec::new();
    if dialect == Dialect::MySql {
        for (from, to) in &altered {
            let (drops, adds) = mysql_foreign_keys(from, to);
            out.extend(drops.into_iter().map(statement));
            foreign_adds.extend(adds);
        }
    }
    out.extend(steps_of_types.into_iter().map(statement));
    // Creates and table changes, in the desired schema's order.
    let mut ordered: Vec<SchemaObject> = made.clone();
    ordered.extend(altered.iter().map(|(_, to)| to.clone()));
    ordered.extend(replaced_in_place.iter().cloned());
    let mut late_drops_done = false;
    for object in dependency_order(&ordered) {
        if !late_drops_done && !late(object.kind) && object.kind != ObjectKind::Table {
            for late in &drops_late {
                out.push(statement(drop_sql(dialect, late)));
            }
            late_drops_done = true;
        }
        match altered.iter().find(|(_, to)| to == object) {
            Some((from, to)) => match alter_table([current, desired], from, to) {
                Ok(altering) => {
                    warnings.extend(altering.warnings);
                    out.extend(altering.statements.into_iter().map(statement));
                }
                Err(reason) => {
                    let warning = format!("cannot write the change of table {}: {reason}", to.name);
                    out.push(format!("-- TODO {warning}\n"));
                    warnings.push(warning);
                }
            },
            None => out.push(crate::schema::create_statement(dialect, object)),
        }
    }
    if !late_drops_done {
        for late in &drops_late {
            out.push(statement(drop_sql(dialect, late)));
        }
    }
    out.extend(foreign_adds.into_iter().map(statement));
    (out.concat(), warnings, no_transaction)
}

/// A statement ended by `;` and a line end; a comment as it is.
fn statement(sql: String) -> String {
    let sql = sql.trim_end();
    match sql.starts_with("-- ") {
        true => format!("{sql}\n"),
        false => format!("{sql};\n"),
    }
}

/// How a changed object other than a table is made as wanted.
enum Replace {
    /// Its statement replaces it: run it again.
    Rerun,
    /// These statements (outside a transaction).
    Steps(Vec<String>),
    /// Drop it, create it again.
    DropAndCreate,
    /// A PostgreSQL enum made again beside the old one, its columns moved
    /// to it ([`enum_rebuild`]).
    EnumRebuild,
}

/// A PostgreSQL function's first two lines: its name, arguments and what
/// it returns.
fn signature(definition: &str) -> Vec<&str> {
    definition.lines().take(2).collect()
}

fn replace_in_place(dialect: Dialect, from: &SchemaObject, to: &SchemaObject) -> Replace {
    match (dialect, from.kind) {
        // `CREATE OR REPLACE` keeps the signature's names and the return
        // type: a change of those drops the function first.
        (Dialect::Postgres, ObjectKind::Function)
            if to.definition.starts_with("CREATE OR REPLACE")
                && signature(&from.definition) == signature(&to.definition) =>
        {
            Replace::Rerun
        }
        (Dialect::Postgres, ObjectKind::Comment | ObjectKind::SequenceOwner) => Replace::Rerun,
        (Dialect::Postgres, ObjectKind::Type) => match enum_values_added(from, to) {
            Some(steps) => Replace::Steps(steps),
            None if from.definition.contains(" AS ENUM (") => Replace::EnumRebuild,
            None => Replace::DropAndCreate,
        },
        _ => Replace::DropAndCreate,
    }
}

/// The statement that drops `object`.
fn drop_sql(dialect: Dialect, object: &SchemaObject) -> String {
    let name = &object.name;
    match (dialect, object.kind) {
        (Dialect::Sqlite, kind) => format!("DROP {} {}", sqlite_kind(kind), quote(name)),
        (Dialect::MySql, ObjectKind::Function)
            if object.definition.split('(').next().unwrap_or_default().contains(" PROCEDURE ") =>
        {
            format!("DROP PROCEDURE {}", mysql_quote(name))
        }
        (Dialect::MySql, ObjectKind::Trigger) => {
            format!("DROP TRIGGER {}", mysql_quote(name.rsplit('.').next().unwrap_or(name)))
        }
        (Dialect::MySql, kind) => {
            let what = match kind {
                ObjectKind::Function => "FUNCTION",
                ObjectKind::View => "VIEW",
                ObjectKind::Sequence => "SEQUENCE",
                ObjectKind::Event => "EVENT",
                _ => "TABLE",
            };
            format!("DROP {what} {}", mysql_quote(name))
        }
        (_, ObjectKind::Extension) => format!("DROP EXTENSION {}", quote(name)),
        (_, ObjectKind::Schema) => format!("DROP SCHEMA {name}"),
        (_, ObjectKind::Type) => format!("DROP TYPE {name}"),
        (_, ObjectKind::Sequence) => format!("DROP SEQUENCE {name}"),
        (Dialect::Postgres, ObjectKind::Function)
            if object.definition.starts_with("CREATE OR REPLACE PROCEDURE ") =>
        {
            format!("DROP PROCEDURE {name}")
        }
        (_, ObjectKind::Function) => format!("DROP FUNCTION {name}"),
        (_, ObjectKind::Table) => format!("DROP TABLE {name}"),
        (_, ObjectKind::View) => format!("DROP VIEW {name}"),
        (_, ObjectKind::MaterializedView) => format!("DROP MATERIALIZED VIEW {name}"),
        (_, ObjectKind::Index) => format!("DROP INDEX {name}"),
        (_, ObjectKind::Constraint) => {
            let table = object
                .definition
                .strip_prefix("ALTER TABLE ")
                .and_then(|rest| rest.split_once(" ADD CONSTRAINT "))
                .map_or("", |(table, _)| table);
            let constraint = name
                .strip_prefix(table)
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(name);
            format!("ALTER TABLE {table} DROP CONSTRAINT {constraint}")
        }
        (_, ObjectKind::SequenceOwner) => format!("ALTER SEQUENCE {name} OWNED BY NONE"),
        (_, ObjectKind::Trigger) => match name.rsplit_once('.') {
            Some((table, trigger)) => format!("DROP TRIGGER {trigger} ON {table}"),
            None => format!("DROP TRIGGER {name}"),
        },
        (_, ObjectKind::Event) => format!("DROP EVENT {name}"),
        (_, ObjectKind::Comment) => format!("COMMENT ON {name} IS NULL"),
    }
}

fn sqlite_kind(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Index => "INDEX",
        ObjectKind::View => "VIEW",
        ObjectKind::Trigger => "TRIGGER",
        _ => "TABLE",
    }
}

/// `name` as a double-quoted identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether an index or trigger `definition` is on table `name` (`ON name`).
fn on_table(definition: &str, name: &str) -> bool {
    let upper = definition.to_ascii_uppercase();
    let Some(at) = upper.find(" ON ") else {
        return false;
    };
    let rest = definition[at + 4..].trim_start();
    let target: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '(')
        .collect();
    let target = target.trim_matches(['"', '`', '[', ']']);
    target.eq_ignore_ascii_case(name) || target.rsplit('.').next() == Some(name)
}

/// The statements that alter a table, and what they warn of.
struct Altering {
    statements: Vec<String>,
    warnings: Vec<String>,
}

fn alter_table(
    schemas: [&Schema; 2],
    from: &SchemaObject,
    to: &SchemaObject,
) -> Result<Altering, String> {
    let dialect = schemas[1].dialect;
    match dialect {
        Dialect::Postgres => postgres_alter(schemas, from, to),
        Dialect::Sqlite => sqlite_rebuild(from, to),
        Dialect::MySql => mysql_alter(from, to),
        _ => Err(format!("altering a table is not written for {dialect}")),
    }
}
