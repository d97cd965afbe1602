//! PostgreSQL's schema, from `pg_catalog`: every schema but the system's,
//! leaving out what extensions own. Definitions are the server's own
//! rendering (`pg_get_indexdef`, `pg_get_viewdef`, `pg_get_functiondef`,
//! `pg_get_triggerdef`, `pg_get_constraintdef`, `pg_get_expr`,
//! `format_type`); a table, which has none, is written from its columns and
//! constraints in the same terms. The queries hold for PostgreSQL 14 to 18.

use super::{ObjectKind, SchemaObject, objects};
use crate::engine::connection::{Conn, Ty};

/// A namespace `n` in scope: not the system's.
const IN_SCOPE: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// Whether the object `$1` of catalogue `$2` is not an extension's.
fn not_extension(oid: &str, catalogue: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalogue}'::regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

/// Every object in scope, except the tables in `own` (a list of literals)
/// with what belongs to them.
pub(super) async fn read(
    conn: &mut Conn<'_>,
    own: &str,
) -> Result<Vec<SchemaObject>, sqlx::Error> {
    let class = not_extension("c.oid", "pg_class");
    let not_own = format!("c.relname NOT IN ({own})");
    let queries = [
        (
            ObjectKind::Extension,
            "SELECT x.extname::text, format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I', \
             x.extname, n.nspname) FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace \
             WHERE x.extname <> 'plpgsql'"
                .to_owned(),
        ),
        (
            ObjectKind::Schema,
            format!(
                "SELECT quote_ident(n.nspname), format('CREATE SCHEMA %I', n.nspname) \
                 FROM pg_namespace n WHERE {IN_SCOPE} AND n.nspname <> 'public' AND {}",
                not_extension("n.oid", "pg_namespace")
            ),
        ),
        (ObjectKind::Type, types()),
        (
            ObjectKind::Sequence,
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname), format('CREATE SEQUENCE %I.%I AS %s \
                 INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s', n.nspname, \
                 c.relname, format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, \
                 s.seqstart, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END) \
                 FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {IN_SCOPE} AND {class} \
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class o ON o.oid = d.refobjid \
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
                 AND (d.deptype = 'i' OR (d.deptype = 'a' AND o.relname IN ({own}))))"
            ),
        ),
        (
            ObjectKind::Function,
            format!(
                "SELECT format('%I.%I(%s)', n.nspname, p.proname, \
                 pg_get_function_identity_arguments(p.oid)), pg_get_functiondef(p.oid) \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE {IN_SCOPE} AND p.prokind IN ('f', 'p', 'w') AND {}",
                not_extension("p.oid", "pg_proc")
            ),
        ),
        (ObjectKind::Table, tables(&class, &not_own)),
        (
            ObjectKind::View,
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname), format('CREATE VIEW %I.%I%s AS%s', \
                 n.nspname, c.relname, CASE WHEN c.reloptions IS NOT NULL \
                 THEN ' WITH (' || array_to_string(c.reloptions, ', ') || ')' ELSE '' END, \
                 E'\\n' || rtrim(pg_get_viewdef(c.oid), ';')) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'v' AND {IN_SCOPE} AND {class}"
            ),
        ),
        (
            ObjectKind::MaterializedView,
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname), format('CREATE MATERIALIZED VIEW \
                 %I.%I AS%s WITH NO DATA', n.nspname, c.relname, \
                 E'\\n' || rtrim(pg_get_viewdef(c.oid), ';')) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'm' AND {IN_SCOPE} AND {class}"
            ),
        ),
        (
            ObjectKind::Index,
            format!(
                "SELECT format('%I.%I', n.nspname, ic.relname), pg_get_indexdef(i.indexrelid) \
                 || coalesce((SELECT format(E';\\nALTER INDEX %I.%I ATTACH PARTITION %I.%I', \
                 pn.nspname, pc.relname, n.nspname, ic.relname) FROM pg_inherits h \
                 JOIN pg_class pc ON pc.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
                 WHERE h.inhrelid = i.indexrelid), '') \
                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                 JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = ic.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'm') AND {IN_SCOPE} AND {class} AND {not_own} \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid \
                 AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))"
            ),
        ),
        (
            ObjectKind::Constraint,
            format!(
                "SELECT format('%I.%I.%I', n.nspname, c.relname, k.conname), \
                 format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, c.relname, k.conname, \
                 pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE (k.contype = 'f' OR (k.contype = 'c' AND NOT k.convalidated)) \
                 AND k.conislocal AND k.conparentid = 0 AND {IN_SCOPE} AND {class} AND {not_own}"
            ),
        ),
        (
            ObjectKind::SequenceOwner,
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname), \
                 format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', n.nspname, c.relname, \
                 tn.nspname, t.relname, a.attname) FROM pg_depend d \
                 JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid \
                 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
                 AND d.deptype = 'a' AND c.relkind = 'S' AND {IN_SCOPE} AND {class} \
                 AND t.relname NOT IN ({own})"
            ),
        ),
        (
            ObjectKind::Trigger,
            format!(
                "SELECT format('%I.%I.%I', n.nspname, c.relname, t.tgname), pg_get_triggerdef(t.oid) \
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {IN_SCOPE} AND {class} AND {not_own}"
            ),
        ),
        (ObjectKind::Comment, comments(&class, &not_own)),
    ];
    let mut found = Vec::new();
    for (kind, sql) in queries {
        let rows = conn.fetch(sql, &[Ty::Text, Ty::Text]).await?;
        found.extend(objects(kind, rows));
    }
    Ok(found)
}

/// Enums, domains (with their defaults and checks) and composite types.
fn types() -> String {
    format!(
        "SELECT format('%I.%I', n.nspname, t.typname), CASE t.typtype \
         WHEN 'e' THEN format('CREATE TYPE %I.%I AS ENUM (%s)', n.nspname, t.typname, \
           (SELECT string_agg(quote_literal(l.enumlabel), ', ' ORDER BY l.enumsortorder) \
            FROM pg_enum l WHERE l.enumtypid = t.oid)) \
         WHEN 'd' THEN format('CREATE DOMAIN %I.%I AS %s', n.nspname, t.typname, \
           format_type(t.typbasetype, t.typtypmod)) \
           || coalesce(' COLLATE ' || (SELECT format('%I.%I', cn.nspname, co.collname) \
              FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace \
              WHERE co.oid = t.typcollation AND t.typcollation <> \
              (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)), '') \
           || coalesce(' DEFAULT ' || t.typdefault, '') \
           || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END \
           || coalesce((SELECT string_agg(format(' CONSTRAINT %I %s', k.conname, \
              pg_get_constraintdef(k.oid)), '' ORDER BY k.conname) FROM pg_constraint k \
              WHERE k.contypid = t.oid AND k.contype = 'c'), '') \
         ELSE format('CREATE TYPE %I.%I AS (%s)', n.nspname, t.typname, \
           (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), \
            ', ' ORDER BY a.attnum) FROM pg_attribute a \
            WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)) END \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE {IN_SCOPE} AND {} AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' \
         AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))",
        not_extension("t.oid", "pg_type")
    )
}

/// Ordinary and partitioned tables: columns (type, collation, identity,
/// generated expression or default, `NOT NULL`), then their own primary
/// key, unique, check and exclusion constraints by name; the parent and
/// bounds of a partition, the parents of an inheriting table, the
/// partition key, the storage options; then the columns' own settings.
fn tables(class: &str, not_own: &str) -> String {
    let columns = "SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) \
         || coalesce(' COLLATE ' || (SELECT format('%I.%I', cn.nspname, co.collname) \
            FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace \
            WHERE co.oid = a.attcollation AND a.attcollation <> ty.typcollation), '') \
         || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' \
            WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END \
         || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED' \
            WHEN a.attgenerated = 'v' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') VIRTUAL' \
            WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END \
         || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END, E',\\n    ' ORDER BY a.attnum) \
         FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attislocal";
    let constraints = "SELECT string_agg(format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)), \
         E',\\n    ' ORDER BY k.conname) FROM pg_constraint k WHERE k.conrelid = c.oid \
         AND k.contype IN ('p', 'u', 'c', 'x') AND k.convalidated AND k.conislocal \
         AND k.conparentid = 0";
    let parents = "SELECT string_agg(format('%I.%I', pn.nspname, pc.relname), ', ' ORDER BY h.inhseqno) \
         FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent \
         JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE h.inhrelid = c.oid";
    // What `CREATE TABLE` cannot say of a column, as pg_dump writes it
    // after the table: its planner options (`n_distinct`; a server's own
    // `pg_…` ones left out, as its pg_dump leaves them), statistics target,
    // and storage where it is not its type's.
    let settings = "SELECT string_agg(format(E';\\nALTER TABLE ONLY %I.%I ALTER COLUMN %I ', \
         n.nspname, c.relname, a.attname) || s.setting, '' ORDER BY a.attnum, s.setting) \
         FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid CROSS JOIN LATERAL (VALUES \
         ((SELECT 'SET (' || string_agg(u.o, ', ' ORDER BY u.i) || ')' \
            FROM unnest(a.attoptions) WITH ORDINALITY u(o, i) WHERE u.o NOT LIKE 'pg\\_%')), \
         (CASE WHEN a.attstattarget >= 0 THEN 'SET STATISTICS ' || a.attstattarget END), \
         (CASE WHEN a.attstorage <> ty.typstorage THEN 'SET STORAGE ' || CASE a.attstorage \
            WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' \
            ELSE 'EXTENDED' END END)) s(setting) \
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND s.setting IS NOT NULL";
    format!(
        "SELECT format('%I.%I', n.nspname, c.relname), \
         CASE WHEN c.relpersistence = 'u' THEN 'CREATE UNLOGGED TABLE ' ELSE 'CREATE TABLE ' END \
         || format('%I.%I', n.nspname, c.relname) \
         || CASE WHEN c.relispartition THEN ' PARTITION OF ' || ({parents}) \
              || coalesce(E' (\\n    ' || ({constraints}) || E'\\n)', '') \
              || ' ' || pg_get_expr(c.relpartbound, c.oid) \
            ELSE E' (' || coalesce(E'\\n    ' || nullif(concat_ws(E',\\n    ', ({columns}), ({constraints})), '') \
              || E'\\n', '') || ')' || coalesce(' INHERITS (' || ({parents}) || ')', '') END \
         || CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END \
         || CASE WHEN c.reloptions IS NOT NULL \
            THEN ' WITH (' || array_to_string(c.reloptions, ', ') || ')' ELSE '' END \
         || coalesce(({settings}), '') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {IN_SCOPE} AND {class} AND {not_own}"
    )
}

/// Comments on tables, views, materialized views, sequences, indexes and
/// their columns.
fn comments(class: &str, not_own: &str) -> String {
    format!(
        "SELECT CASE WHEN d.objsubid = 0 THEN object ELSE format('COLUMN %I.%I.%I', n.nspname, \
         c.relname, a.attname) END, format('COMMENT ON %s IS %L', CASE WHEN d.objsubid = 0 \
         THEN object ELSE format('COLUMN %I.%I.%I', n.nspname, c.relname, a.attname) END, \
         d.description) FROM pg_description d JOIN pg_class c ON c.oid = d.objoid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid \
         CROSS JOIN LATERAL (SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' \
           WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX' \
           ELSE 'TABLE' END || format(' %I.%I', n.nspname, c.relname) AS object) o \
         WHERE d.classoid = 'pg_class'::regclass AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i') \
         AND {IN_SCOPE} AND {class} AND {not_own}"
    )
}
