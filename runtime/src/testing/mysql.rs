//! MySQL and MariaDB test databases: a template schema per migration set,
//! its objects recreated from their own definitions per test; spares
//! claimed by dropping the table that marks them, the claimer recorded in
//! `stowage_claims.owners`.

use super::flow::{Copying, Maint};
use super::names::{
    KEPT, PREFIX, TEMPLATE, new_name, now_secs, plain_name, project, template_hash, with_database,
};
use super::reuse_mysql;
use super::server::{Entry, Finished, test_error};
use crate::schema::dependency_order;
use crate::{Error, Migrator, ObjectKind, SchemaObject};
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::time::Duration;

/// MySQL and MariaDB.
#[derive(Debug)]
pub(super) struct MySql;

impl Copying for MySql {
    type Conn = sqlx::MySqlConnection;

    async fn drop_database(m: &mut M, name: &str) -> Result<(), Error> {
        let sql = format!("DROP DATABASE IF EXISTS {name}");
        Self::execute(m, sql, "cannot drop a test database").await?;
        forget_owner(&mut m.conn, name).await;
        Ok(())
    }

    async fn inventory(m: &mut M) -> Result<Vec<Entry>, Error> {
        let sql = "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
                   WHERE LEFT(SCHEMA_NAME, 13) IN (?, ?) OR LEFT(SCHEMA_NAME, 12) = ?";
        let what = "cannot list test databases";
        let names: Vec<String> = fetch!(
            m,
            query_scalar,
            fetch_all,
            sql,
            [PREFIX, KEPT, TEMPLATE],
            what
        )?;
        let sql = "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR) \
                   FROM information_schema.TABLES \
                   WHERE LEFT(TABLE_SCHEMA, 13) = ? AND LEFT(TABLE_NAME, 14) = 'stowage_spare_'";
        let what = "cannot list spare copies";
        let marks: Vec<(String, String)> = fetch!(m, query_as, fetch_all, sql, [PREFIX], what)?;
        let sql = "SELECT DISTINCT CAST(DB AS CHAR) FROM information_schema.PROCESSLIST \
                   WHERE DB IS NOT NULL AND ID <> CONNECTION_ID()";
        let users: Vec<String> =
            fetch!(m, query_scalar, fetch_all, sql, [], "cannot list sessions")?;
        // There may be no owners yet.
        let owners: Vec<(String, u64, u64, bool)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CAST(name AS CHAR), pid, at, kept FROM {OWNERS}"
        )))
        .fetch_all(&mut m.conn)
        .await
        .unwrap_or_default();
        Ok(names
            .into_iter()
            .map(|name| {
                let owner = owners.iter().find(|o| o.0 == name);
                Entry {
                    in_use: users.contains(&name),
                    spare_of: marks
                        .iter()
                        .find(|(schema, _)| *schema == name)
                        .map(|(_, mark)| mark["stowage_spare_".len()..].to_owned()),
                    owner: owner.map(|o| (u32::try_from(o.1).unwrap_or(0), o.2)),
                    kept: owner.is_some_and(|o| o.3),
                    name,
                }
            })
            .collect())
    }

    async fn remove(m: &mut M, entry: &Entry) -> Result<bool, Error> {
        let name = entry.name.as_str();
        if entry.spare_of.is_some() && entry.owner.is_none() {
            // An unclaimed spare: claim it for dropping, unless a test
            // has just claimed it.
            if !own(m, name, false).await? {
                return Ok(false);
            }
        } else {
            let sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?";
            let users: i64 = scalar!(m, sql, [name], "cannot list sessions")?;
            if users > 0 {
                return Ok(false);
            }
        }
        let sql = format!("DROP DATABASE IF EXISTS {name}");
        Self::execute(m, sql, "cannot drop a test database").await?;
        forget_owner(&mut m.conn, name).await;
        Ok(true)
    }

    async fn keep(m: &mut M, name: &str) -> Result<String, Error> {
        // A schema cannot be renamed: its owner row says it is kept.
        own(m, name, true).await?;
        Ok(name.to_owned())
    }

    /// A reset compares every table with the template's: measured on a
    /// small set (three tables), dropping and copying again was as quick.
    fn reset_pays(copied: Option<Duration>) -> bool {
        super::spares::reset_pays(copied)
    }

    async fn maintenance(server: &str) -> Result<M, Error> {
        M::open::<sqlx::MySql>(server).await
    }

    async fn execute(m: &mut M, sql: String, what: &str) -> Result<(), Error> {
        run!(&mut m.conn, sql, what, &m.server)
    }

    async fn lock(m: &mut M, key: &str, wait: Option<Duration>) -> Result<bool, Error> {
        let wait = wait.map_or(0, |wait| wait.as_secs());
        let lock: Option<i64> = scalar!(m, "SELECT GET_LOCK(?, ?)", [key, wait], "cannot lock")?;
        Ok(lock == Some(1))
    }

    async fn unlock(m: &mut M, key: &str) -> Result<(), Error> {
        let _: Option<i64> = scalar!(m, "SELECT RELEASE_LOCK(?)", [key], "cannot unlock")?;
        Ok(())
    }

    async fn template_ready(m: &mut M, name: &str) -> Result<bool, Error> {
        let sql = "SELECT COUNT(*) FROM information_schema.TABLES \
                   WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";
        let what = "cannot look for the template";
        let count: i64 = scalar!(m, sql, [name, TEMPLATE_READY], what)?;
        Ok(count == 1)
    }

    async fn build_template(m: &mut M, name: &str, migrator: &Migrator) -> Result<(), Error> {
        let sql = format!("DROP DATABASE IF EXISTS {name}");
        Self::execute(m, sql, "cannot drop a half-built template").await?;
        let sql = format!("CREATE DATABASE {name}");
        Self::execute(m, sql, "cannot create the template schema").await?;
        let url = with_database(&m.server, name);
        let mut template = sqlx::MySqlConnection::connect(&url)
            .await
            .map_err(test_error("cannot connect to the template", &m.server))?;
        migrator.run(&mut template).await?;
        let sql = format!("CREATE TABLE {TEMPLATE_READY} (ready INT)");
        run!(&mut template, sql, "cannot mark the template", &m.server)
    }

    async fn copy(m: &mut M, template: &str, name: &str, spare: bool) -> Result<(), Error> {
        let mark = spare.then(|| spare_mark(template));
        copy(m, template, name, mark.as_deref()).await
    }

    /// A spare's mark says it is one.
    fn spare_name(_template: &str) -> String {
        new_name()
    }

    async fn claim(m: &mut M, template: &str, _name: &str) -> Result<Option<String>, Error> {
        claim_spare(m, template).await
    }

    /// A reset compares the schema with its template's.
    async fn since(_m: &mut M) -> Option<String> {
        None
    }

    async fn ready(m: &mut M, template: &str) -> Result<usize, Error> {
        let sql = "SELECT COUNT(*) FROM information_schema.TABLES \
                   WHERE TABLE_NAME = ? AND TABLE_SCHEMA LIKE ?";
        let (mark, ours) = (spare_mark(template), ours());
        let ready: i64 = scalar!(m, sql, [mark, ours], "cannot count spare copies")?;
        Ok(usize::try_from(ready).unwrap_or(usize::MAX))
    }

    /// It is taken first, as a test claims one.
    async fn drop_spare(m: &mut M, template: &str, spare: &str) -> Result<(), Error> {
        if take(m, spare, &spare_mark(template)).await? {
            let sql = format!("DROP DATABASE IF EXISTS `{spare}`");
            Self::execute(m, sql, "cannot drop a spare copy too many").await?;
            forget_owner(&mut m.conn, spare).await;
        }
        Ok(())
    }

    async fn ended(m: &mut M, name: &str) -> Result<bool, Error> {
        reuse_mysql::ended(&mut m.conn, name)
            .await
            .map_err(test_error(
                "cannot reset a test database: ending its sessions",
                &m.server,
            ))
    }

    async fn reset(m: &mut M, db: &Finished) -> Result<Option<String>, Error> {
        let mark = spare_mark(&db.template);
        let (conn, server) = (&mut m.conn, m.server.as_str());
        let reset = reuse_mysql::reset(conn, server, &db.name, &db.template, &mark).await?;
        Ok(reset.then(|| db.name.clone()))
    }
}

/// A maintenance connection, as the flow holds it.
type M = Maint<sqlx::MySqlConnection>;

/// The table whose presence says a template is complete.
const TEMPLATE_READY: &str = "stowage_template_ready";

/// Recreate the template schema's objects in a new schema, from their own
/// definitions, in one multi-statement round trip.
async fn copy(
    m: &mut M,
    template: &str,
    name: &str,
    spare_mark: Option<&str>,
) -> Result<(), Error> {
    let (conn, server) = (&mut m.conn, m.server.as_str());
    let fail = |what: &str| {
        test_error(
            &format!("cannot copy the template {template}: {what}"),
            server,
        )
    };
    // Tables, views and MariaDB's sequences, with their kind.
    let relations = listed(
        conn,
        template,
        &format!(
            "SELECT CAST(TABLE_TYPE AS CHAR), CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> '{TEMPLATE_READY}' ORDER BY TABLE_NAME"
        ),
    )
    .await
    .map_err(fail("tables"))?;
    let of = |kind: &str, shown_as: &'static str| -> Vec<(&str, &str)> {
        let rows = relations.iter().filter(|(k, _)| k == kind);
        rows.map(|(_, name)| (shown_as, name.as_str())).collect()
    };
    let (tables, views, sequences) = (
        of("BASE TABLE", "TABLE"),
        of("VIEW", "VIEW"),
        of("SEQUENCE", "SEQUENCE"),
    );
    let routines = listed(
        conn,
        template,
        "SELECT CAST(ROUTINE_TYPE AS CHAR), CAST(ROUTINE_NAME AS CHAR) FROM information_schema.ROUTINES \
         WHERE ROUTINE_SCHEMA = ?",
    )
    .await
    .map_err(fail("routines"))?;
    let triggers = listed(
        conn,
        template,
        "SELECT 'TRIGGER', CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS \
         WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
    )
    .await
    .map_err(fail("triggers"))?;
    let events = listed(
        conn,
        template,
        "SELECT 'EVENT', CAST(EVENT_NAME AS CHAR) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
    )
    .await
    .map_err(fail("events"))?;

    let mut script = vec![
        format!("CREATE DATABASE {name}"),
        format!("USE {name}"),
        "SET FOREIGN_KEY_CHECKS = 0".to_owned(),
    ];
    // MariaDB's sequences, before the tables whose defaults take from
    // them, each at the value it had reached.
    for (sequence, definition) in sequences.iter().zip(
        show_all(conn, template, &sequences, 1)
            .await
            .map_err(fail("sequence definitions"))?,
    ) {
        let sequence = sequence.1;
        let next: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT CAST(next_not_cached_value AS CHAR) FROM `{template}`.`{sequence}`"
        )))
        .fetch_one(&mut *conn)
        .await
        .map_err(fail("sequence values"))?;
        script.push(definition);
        script.push(format!("SELECT SETVAL(`{sequence}`, {next}, 0)"));
    }
    script.extend(
        show_all(conn, template, &tables, 1)
            .await
            .map_err(fail("table definitions"))?,
    );
    // The rows (seed data, the history) in one transaction: one commit.
    script.push("START TRANSACTION".to_owned());
    for (_, table) in &tables {
        script.push(format!(
            "INSERT INTO `{name}`.`{table}` SELECT * FROM `{template}`.`{table}`"
        ));
    }
    script.push("COMMIT".to_owned());
    // Routines before the views that call them (MySQL checks a view's
    // functions when it is created, a routine's body only when it runs).
    script.extend(
        show_all(conn, template, &borrowed(&routines), 2)
            .await
            .map_err(fail("routine definitions"))?,
    );
    // Each view after those it selects from, as a dump orders them.
    let definitions = show_all(conn, template, &views, 1)
        .await
        .map_err(fail("view definitions"))?;
    let views: Vec<SchemaObject> = views
        .iter()
        .zip(definitions)
        .map(|((_, view), definition)| SchemaObject {
            kind: ObjectKind::View,
            name: (*view).to_owned(),
            definition: definition.replace(&format!("`{template}`."), ""),
        })
        .collect();
    script.extend(
        dependency_order(&views)
            .into_iter()
            .map(|view| view.definition.clone()),
    );
    script.extend(
        show_all(conn, template, &borrowed(&triggers), 2)
            .await
            .map_err(fail("trigger definitions"))?,
    );
    script.extend(
        show_all(conn, template, &borrowed(&events), 3)
            .await
            .map_err(fail("event definitions"))?,
    );
    script.push("SET FOREIGN_KEY_CHECKS = 1".to_owned());
    if let Some(mark) = spare_mark {
        // Last, so that a marked spare is a complete one.
        script.push(format!("CREATE TABLE `{name}`.`{mark}` (spare INT)"));
    }
    sqlx::raw_sql(AssertSqlSafe(script.join(";\n")))
        .execute(&mut *conn)
        .await
        .map_err(fail("recreating its objects"))?;
    Ok(())
}

/// The `(kind, name)` rows of a query on `information_schema` taking the
/// template's name.
async fn listed(
    conn: &mut sqlx::MySqlConnection,
    template: &str,
    sql: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(sql.to_owned()))
        .bind(template)
        .fetch_all(conn)
        .await
}

fn borrowed(rows: &[(String, String)]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|(kind, name)| (kind.as_str(), name.as_str()))
        .collect()
}

/// `SHOW CREATE <kind>` of each object of the template, the definition
/// in `column`.
async fn show_all(
    conn: &mut sqlx::MySqlConnection,
    template: &str,
    objects: &[(&str, &str)],
    column: usize,
) -> Result<Vec<String>, sqlx::Error> {
    let mut definitions = Vec::with_capacity(objects.len());
    for (kind, object) in objects {
        let sql = format!("SHOW CREATE {kind} `{template}`.`{object}`");
        definitions.push(show_create(&mut *conn, sql, column).await?);
    }
    Ok(definitions)
}

/// The definition in column `column` of a MySQL `SHOW CREATE …` statement.
async fn show_create(
    conn: &mut sqlx::MySqlConnection,
    sql: String,
    column: usize,
) -> Result<String, sqlx::Error> {
    conn.fetch_one(AssertSqlSafe(sql))
        .await?
        .try_get::<String, _>(column)
}

/// Who claimed a spare (or kept a test's database) and when: a claimed
/// spare keeps the name, and so the date and process, it was made with, and
/// a schema cannot be renamed to say it is kept.
const OWNERS: &str = "stowage_claims.owners";

/// Make this process the owner of `name` from now: with `kept`, whoever
/// owned it before; else only if no one does (the claim itself: of two
/// sessions, one succeeds). Whether it is this process's now.
async fn own(m: &mut M, name: &str, kept: bool) -> Result<bool, Error> {
    let (conn, server) = (&mut m.conn, m.server.as_str());
    let sql = format!(
        "CREATE DATABASE IF NOT EXISTS stowage_claims; \
         CREATE TABLE IF NOT EXISTS {OWNERS} (name VARCHAR(64) PRIMARY KEY, \
         pid BIGINT UNSIGNED NOT NULL, at BIGINT UNSIGNED NOT NULL, kept BOOLEAN NOT NULL)"
    );
    run!(&mut *conn, sql, "cannot create the table of owners", server)?;
    let insert = match kept {
        true => {
            "INSERT INTO {OWNERS} (name, pid, at, kept) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE pid = VALUES(pid), at = VALUES(at), kept = VALUES(kept)"
        }
        false => "INSERT IGNORE INTO {OWNERS} (name, pid, at, kept) VALUES (?, ?, ?, ?)",
    };
    let done = sqlx::query(AssertSqlSafe(insert.replace("{OWNERS}", OWNERS)))
        .bind(name)
        .bind(std::process::id())
        .bind(now_secs())
        .bind(kept)
        .execute(&mut *conn)
        .await
        .map_err(test_error("cannot record a database's owner", server))?;
    Ok(kept || done.rows_affected() == 1)
}

/// A `LIKE` pattern for this project's test databases.
fn ours() -> String {
    format!("{PREFIX}{}_%", project()).replace('_', "\\_")
}

/// The table that marks a schema as a complete, unclaimed spare of `template`.
fn spare_mark(template: &str) -> String {
    format!("stowage_spare_{}", template_hash(template))
}

/// Claim a spare copy of `template` by dropping its mark; its name, if any is left.
async fn claim_spare(m: &mut M, template: &str) -> Result<Option<String>, Error> {
    let mark = spare_mark(template);
    let sql = "SELECT CAST(TABLE_SCHEMA AS CHAR) FROM information_schema.TABLES \
               WHERE TABLE_NAME = ? AND TABLE_SCHEMA LIKE ? ORDER BY RAND()";
    let what = "cannot look for spare copies";
    let spares: Vec<String> = fetch!(m, query_scalar, fetch_all, sql, [&mark, ours()], what)?;
    for spare in spares {
        if take(m, &spare, &mark).await? {
            return Ok(Some(spare));
        }
    }
    Ok(None)
}

/// Take spare `spare` (marked with table `mark`) for this session: `false`
/// when another has it.
async fn take(m: &mut M, spare: &str, mark: &str) -> Result<bool, Error> {
    // Only one session can own it; the others try the next. Owned before
    // its mark goes, it never looks like a dead process's.
    if !plain_name(spare) || !plain_name(mark) || !own(m, spare, false).await? {
        return Ok(false);
    }
    let unmark = format!("DROP TABLE `{spare}`.`{mark}`");
    match sqlx::raw_sql(AssertSqlSafe(unmark))
        .execute(&mut m.conn)
        .await
    {
        Ok(_) => Ok(true),
        // Claimed, used and dropped by another test since it was listed.
        Err(error)
            if error.as_database_error().and_then(|e| e.code()).as_deref() == Some("42S02") =>
        {
            forget_owner(&mut m.conn, spare).await;
            Ok(false)
        }
        Err(error) => Err(test_error("cannot unmark a claimed spare", &m.server)(
            error,
        )),
    }
}

/// Forget the owner of a database that is gone (there may be none).
pub(super) async fn forget_owner(conn: &mut sqlx::MySqlConnection, name: &str) {
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {OWNERS} WHERE name = ?"
    )))
    .bind(name)
    .execute(conn)
    .await;
}
