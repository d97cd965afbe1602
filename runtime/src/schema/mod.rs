//! [`Migrator::dump`]: a database's schema as its server describes it, read
//! from the catalogue (one file per backend), and written back as SQL.
//!
//! Each object's definition is the server's own rendering where it has one
//! (`pg_get_*def`, `SHOW CREATE …`, `sqlite_schema.sql`), so that two
//! schemas are equal when the server renders them alike. stowage's own
//! tables are never part of it.

use crate::engine::connection::{Conn, Database};
use crate::{Dialect, Error, Migrator};
use std::fmt;

#[cfg(feature = "any")]
mod expected;
mod generate;
mod mysql;
mod postgres;
mod snapshot;
mod sqlite;

#[cfg(feature = "any")]
pub use expected::Drift;
pub use generate::{Change, Generated};
#[cfg(feature = "any")]
pub use generate::Renames;
#[cfg(feature = "testing")]
pub(crate) use snapshot::file_name as snapshot_file_name;

/// What kind of object a [`SchemaObject`] is. The order is the order in
/// which [`Schema::to_sql`] creates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A PostgreSQL extension (its own objects are left out).
    Extension,
    /// A PostgreSQL schema other than `public`.
    Schema,
    /// A PostgreSQL enum, domain or composite type.
    Type,
    /// A sequence not made for an identity column.
    Sequence,
    /// A function or procedure (MySQL: a routine).
    Function,
    /// A table, with its columns and constraints (PostgreSQL: but those of
    /// [`ObjectKind::Constraint`]).
    Table,
    /// A view.
    View,
    /// A PostgreSQL materialized view (created without its data).
    MaterializedView,
    /// An index that no constraint made (a partition's with the statement
    /// that attaches it to its parent's).
    Index,
    /// A PostgreSQL constraint added once every table and index exists:
    /// a foreign key, or a check not validated (`NOT VALID`).
    Constraint,
    /// A PostgreSQL sequence's owning column (`ALTER SEQUENCE … OWNED BY`).
    SequenceOwner,
    /// A trigger.
    Trigger,
    /// A MySQL event.
    Event,
    /// A PostgreSQL comment on a table, view, column, sequence or index.
    Comment,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Extension => "extension",
            ObjectKind::Schema => "schema",
            ObjectKind::Type => "type",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Function => "function",
            ObjectKind::Table => "table",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Index => "index",
            ObjectKind::Constraint => "constraint",
            ObjectKind::SequenceOwner => "sequence owner",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Event => "event",
            ObjectKind::Comment => "comment",
        })
    }
}

/// One object of a [`Schema`]: its kind, its name and the statement that
/// creates it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SchemaObject {
    /// What it is.
    pub kind: ObjectKind,
    /// Its name, unique among the objects of its kind: `schema.name` on
    /// PostgreSQL (`schema.table.name` for a trigger or constraint, the
    /// function's argument types after its name), the bare name elsewhere
    /// (`table.name` for a MySQL trigger).
    pub name: String,
    /// The statement that creates it, without a terminating `;`, as the
    /// server renders it.
    pub definition: String,
}

/// A database's schema: every object of the kinds [`ObjectKind`] names,
/// sorted by kind and name, so that two equal schemas compare equal and
/// print alike.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Schema {
    dialect: Dialect,
    objects: Vec<SchemaObject>,
}

impl Schema {
    fn new(dialect: Dialect, mut objects: Vec<SchemaObject>) -> Schema {
        objects.sort();
        objects.dedup();
        Schema { dialect, objects }
    }

    /// The database's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Every object, sorted by kind, then name.
    pub fn objects(&self) -> &[SchemaObject] {
        &self.objects
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: ObjectKind, name: &str) -> Option<&SchemaObject> {
        self.objects
            .iter()
            .find(|object| object.kind == kind && object.name == name)
    }

    /// The schema as one SQL script that recreates it in an empty database:
    /// kind by kind in [`ObjectKind`]'s order, views after the views they
    /// read, each statement ended by `;` (MySQL routines, triggers and
    /// events between `DELIMITER ;;` lines, as its client and stowage read
    /// them). The same schema always gives the same text.
    pub fn to_sql(&self) -> String {
        let mut out = String::from(match self.dialect {
            Dialect::Postgres => "SET check_function_bodies = false;\n",
            Dialect::MySql => "SET FOREIGN_KEY_CHECKS = 0;\n",
            _ => "",
        });
        for object in dependency_order(&self.objects) {
            out.push('\n');
            out.push_str(&create_statement(self.dialect, object));
        }
        if self.dialect == Dialect::MySql {
            out.push_str("\nSET FOREIGN_KEY_CHECKS = 1;\n");
        }
        out
    }

    /// What differs from `expected`, object by object, in [`Schema::objects`]'s
    /// order; empty when the two are equal.
    pub fn diff(&self, expected: &Schema) -> Vec<Difference> {
        let mut differences: Vec<Difference> = expected
            .changes_to(self)
            .into_iter()
            .map(|change| match change {
                Change::Drop(object) => Difference::Missing(object),
                Change::Create(object) => Difference::Unexpected(object),
                Change::Replace { from, to } | Change::AlterTable { from, to } => {
                    Difference::Changed {
                        expected: from,
                        actual: to,
                    }
                }
            })
            .collect();
        differences.sort_by(|a, b| a.object().cmp(b.object()));
        differences
    }
}

/// One way in which a schema is not the one expected ([`Schema::diff`]).
///
/// With feature `serde`, one flat object: `change` (`missing`,
/// `unexpected` or `changed`), `kind`, `name`, and the `expected` and
/// `actual` definitions (`null` where there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// Expected, and not there.
    Missing(SchemaObject),
    /// There, and not expected.
    Unexpected(SchemaObject),
    /// There with another definition.
    Changed {
        /// What was expected.
        expected: SchemaObject,
        /// What is there.
        actual: SchemaObject,
    },
}

#[cfg(feature = "serde")]
impl serde::Serialize for Difference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (change, expected, actual) = match self {
            Difference::Missing(object) => ("missing", Some(object), None),
            Difference::Unexpected(object) => ("unexpected", None, Some(object)),
            Difference::Changed { expected, actual } => ("changed", Some(expected), Some(actual)),
        };
        let object = self.object();
        let mut out = serializer.serialize_struct("Difference", 5)?;
        out.serialize_field("change", change)?;
        out.serialize_field("kind", &object.kind)?;
        out.serialize_field("name", &object.name)?;
        out.serialize_field("expected", &expected.map(|o| &o.definition))?;
        out.serialize_field("actual", &actual.map(|o| &o.definition))?;
        out.end()
    }
}

impl Difference {
    /// The object it is about (the expected one, when changed).
    pub fn object(&self) -> &SchemaObject {
        match self {
            Difference::Missing(object) | Difference::Unexpected(object) => object,
            Difference::Changed { expected, .. } => expected,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let object = self.object();
        match self {
            Difference::Missing(_) => write!(f, "{} {} is missing", object.kind, object.name),
            Difference::Unexpected(_) => {
                write!(f, "{} {} is not expected", object.kind, object.name)
            }
            Difference::Changed { expected, actual } => write!(
                f,
                "{} {} differs:\n  expected: {}\n  actual:   {}",
                object.kind, object.name, expected.definition, actual.definition
            ),
        }
    }
}

/// When an object of `kind` is created: in [`ObjectKind`]'s order, except
/// that views and materialized views, which may read each other, are
/// created together.
fn stage(kind: ObjectKind) -> ObjectKind {
    match kind {
        ObjectKind::MaterializedView => ObjectKind::View,
        other => other,
    }
}

/// The objects in the order that creates them: by [`stage`]; within a
/// stage, each after those its definition names (views read views, types
/// and tables name others of their kind), by name otherwise.
pub(crate) fn dependency_order(objects: &[SchemaObject]) -> Vec<&SchemaObject> {
    let mut ordered = Vec::with_capacity(objects.len());
    let mut staged: Vec<&SchemaObject> = objects.iter().collect();
    staged.sort_by_key(|object| stage(object.kind));
    let mut at = 0;
    while at < staged.len() {
        let kind = stage(staged[at].kind);
        let end = staged[at..]
            .iter()
            .position(|object| stage(object.kind) != kind)
            .map_or(staged.len(), |length| at + length);
        let mut left: Vec<&SchemaObject> = staged[at..end].to_vec();
        while !left.is_empty() {
            // The first whose definition names none of the others left; on
            // a cycle (or a name that only looks like one), the first.
            let next = left
                .iter()
                .position(|object| {
                    !left.iter().any(|other| {
                        other.name != object.name && mentions(&object.definition, &other.name)
                    })
                })
                .unwrap_or(0);
            ordered.push(left.remove(next));
        }
        at = end;
    }
    ordered
}

/// Whether `definition` names the object `name` (its last dotted part,
/// unquoted) as a whole word.
fn mentions(definition: &str, name: &str) -> bool {
    let bare = name.rsplit('.').next().unwrap_or(name);
    let bare = bare.split('(').next().unwrap_or(bare).trim_matches(['"', '`']);
    if bare.is_empty() {
        return false;
    }
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    definition.match_indices(bare).any(|(i, _)| {
        let before = definition[..i].chars().next_back();
        let after = definition[i + bare.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// A connection of `db`, and its dialect.
pub(super) async fn connected<'a>(db: impl Database<'a>) -> Result<(Conn<'a>, Dialect), Error> {
    let conn = db
        .connect()
        .await
        .map_err(Error::db("cannot connect to the database"))?;
    let dialect = conn.dialect()?;
    Ok((conn, dialect))
}

impl Migrator {
    /// The database's schema, read from its catalogue: every table, view,
    /// index, trigger and the rest [`ObjectKind`] lists, leaving out
    /// stowage's own tables. Read-only: takes no lock.
    ///
    /// ```no_run
    /// # static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("migrations");
    /// # async fn dump(pool: &sqlx::SqlitePool) -> Result<(), Box<dyn std::error::Error>> {
    /// let schema = MIGRATOR.dump(pool).await?;
    /// std::fs::write("schema.sql", schema.to_sql())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the connection or a catalogue query fails.
    pub async fn dump<'a>(&self, db: impl Database<'a>) -> Result<Schema, Error> {
        let (mut conn, dialect) = connected(db).await?;
        let table = self.table(dialect)?;
        let own = table.own_names();
        read(&mut conn, dialect, &own, |text| table.sql.text_literal(text)).await
    }
}

/// Whether `run` may apply migrations to the database on `conn`, which
/// has no history in `table`: not when it holds tables or views of its own
/// (unless the migrator allows it, [`Migrator::with_existing_schema`]).
pub(crate) async fn check_no_schema(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &crate::engine::history::Table,
) -> Result<(), Error> {
    let own = table.own_names();
    let schema = read(conn, table.dialect(), &own, |text| table.sql.text_literal(text)).await?;
    let objects: Vec<String> = schema
        .objects
        .into_iter()
        .filter(|o| matches!(o.kind, ObjectKind::Table | ObjectKind::View | ObjectKind::MaterializedView))
        .map(|o| o.name)
        .collect();
    if objects.is_empty() {
        return Ok(());
    }
    match migrator.config().on_existing_schema() {
        crate::Policy::Allow => {
            tracing::warn!(
                tables = objects.len(),
                "the database holds tables of its own and no history; applying beside them"
            );
            Ok(())
        }
        _ => Err(Error::ExistingSchema {
            objects,
            matching: None,
        }),
    }
}

/// The schema on `conn`, leaving out the tables named in `own` (and
/// their indexes and triggers); `literal` writes a text value in the
/// dialect.
async fn read(
    conn: &mut Conn<'_>,
    dialect: Dialect,
    own: &[String],
    literal: impl Fn(&str) -> String,
) -> Result<Schema, Error> {
    let own = own
        .iter()
        .map(|name| literal(name))
        .collect::<Vec<_>>()
        .join(", ");
    let objects = match dialect {
        Dialect::Postgres => postgres::read(conn, &own).await,
        Dialect::MySql => mysql::read(conn, &own).await,
        Dialect::Sqlite => sqlite::read(conn, &own).await,
        other => return Err(Error::UnsupportedBackend(other.to_string())),
    }
    .map_err(Error::db("cannot read the schema from the catalogue"))?;
    Ok(Schema::new(dialect, objects))
}

/// Rows of `(kind, name, definition)` columns made into objects of `kind`.
/// The statement that creates `object`, ended, as a dump and a generated
/// migration write it: MySQL's routines, triggers and events between
/// `DELIMITER` lines, as its client and stowage read them; SQLite's text as
/// SQLite keeps it, to the last space before the `;`, so that a copy keeps
/// the same text.
pub(crate) fn create_statement(dialect: Dialect, object: &SchemaObject) -> String {
    let body = matches!(
        object.kind,
        ObjectKind::Function | ObjectKind::Trigger | ObjectKind::Event
    );
    match dialect {
        Dialect::MySql if body => format!("DELIMITER ;;\n{};;\nDELIMITER ;\n", object.definition),
        Dialect::Sqlite => format!("{};\n", object.definition),
        _ => format!("{};\n", object.definition.trim_end()),
    }
}

fn objects(
    kind: ObjectKind,
    rows: Vec<Vec<crate::engine::connection::Cell>>,
) -> impl Iterator<Item = SchemaObject> {
    rows.into_iter().filter_map(move |row| {
        let name = row.first()?.text()?.to_owned();
        let definition = row.get(1)?.text()?.to_owned();
        Some(SchemaObject {
            kind,
            name,
            definition,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite schema of `(kind, name, definition)`s.
    fn sqlite(objects: &[(ObjectKind, &str, &str)]) -> Schema {
        let objects = objects.iter().map(|&(kind, name, definition)| SchemaObject {
            kind,
            name: name.to_owned(),
            definition: definition.to_owned(),
        });
        Schema::new(Dialect::Sqlite, objects.collect())
    }

    #[test]
    fn views_come_after_the_views_they_read() {
        let schema = sqlite(&[
            (ObjectKind::View, "a", "CREATE VIEW a AS SELECT * FROM b_c"),
            (ObjectKind::View, "b_c", "CREATE VIEW b_c AS SELECT * FROM t"),
            (ObjectKind::Table, "t", "CREATE TABLE t (a_b int)"),
            (ObjectKind::View, "b", "CREATE VIEW b AS SELECT a FROM t"),
            (ObjectKind::MaterializedView, "m", "CREATE MATERIALIZED VIEW m AS SELECT * FROM b"),
            (ObjectKind::View, "a_m", "CREATE VIEW a_m AS SELECT * FROM m"),
        ]);
        let order: Vec<&str> = dependency_order(schema.objects())
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(order, ["t", "b_c", "a", "b", "m", "a_m"]);
    }

    #[test]
    fn diff_names_what_is_missing_unexpected_and_changed() {
        let expected = sqlite(&[
            (ObjectKind::Table, "t", "CREATE TABLE t (a int)"),
            (ObjectKind::Index, "i", "CREATE INDEX i ON t (a)"),
        ]);
        let actual = sqlite(&[
            (ObjectKind::Table, "t", "CREATE TABLE t (a text)"),
            (ObjectKind::View, "v", "CREATE VIEW v AS SELECT 1"),
        ]);
        let said: Vec<String> = actual.diff(&expected).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            said,
            [
                "table t differs:\n  expected: CREATE TABLE t (a int)\n  actual:   CREATE TABLE t (a text)",
                "view v is not expected",
                "index i is missing",
            ]
        );
        assert!(expected.diff(&expected).is_empty());
    }
}
