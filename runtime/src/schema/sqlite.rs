//! SQLite's schema: `sqlite_schema`'s statements, as the database keeps
//! them (SQLite stores the text each object was created with, edited by
//! `ALTER TABLE`).

use super::{ObjectKind, SchemaObject, objects};
use crate::engine::connection::{Conn, Ty};

/// Every table, index, view and trigger of the main database, except the
/// internal ones (`sqlite_…`), the shadow tables of virtual tables, and
/// the tables in `own` (a list of literals) with what belongs to them.
pub(super) async fn read(
    conn: &mut Conn<'_>,
    own: &str,
) -> Result<Vec<SchemaObject>, sqlx::Error> {
    let mut found = Vec::new();
    for (kind, ty) in [
        (ObjectKind::Table, "table"),
        (ObjectKind::Index, "index"),
        (ObjectKind::View, "view"),
        (ObjectKind::Trigger, "trigger"),
    ] {
        let sql = format!(
            "SELECT name, sql FROM main.sqlite_master WHERE type = '{ty}' AND sql IS NOT NULL \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name NOT IN ({own}) \
             AND name NOT IN (SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow')"
        );
        let rows = conn.fetch(sql, &[Ty::Text, Ty::Text]).await?;
        found.extend(objects(kind, rows));
    }
    Ok(found)
}
