//! MySQL/MariaDB: handing a finished test's schema to the next test, reset
//! to its template's state, instead of dropping it and recreating the
//! template's objects again.
//!
//! The template schema is on the same server and nobody writes to it, so it
//! is what the test's schema is compared with:
//!
//! - the definitions (tables, columns, indexes, constraints, views,
//!   triggers, routines, events), as `information_schema` lists them, with
//!   each schema's own name left out of the views' text: any difference
//!   (DDL) means the schema is dropped, as does a MariaDB sequence;
//! - each table's `CHECKSUM TABLE` and `AUTO_INCREMENT`: a table whose rows
//!   differ has them deleted and, if the template's table has rows, copied
//!   back from it (foreign key checks off, in this session only); a counter
//!   that moved is set back.
//!
//! Then every table is compared again (a trigger fired by the reset shows
//! there), and only a schema equal to the template in all of it is marked a
//! spare again; anything else is dropped.

use super::mysql::forget_owner;
use super::names::plain_name;
use super::server::test_error;
use crate::Error;
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The definitions of schema `?` (each `?` is the same schema's name), as
/// one digest.
const DEFINITIONS: &str = "SELECT MD5(CONCAT_WS('|', \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION) \
   ORDER BY TABLE_NAME SEPARATOR ';') FROM information_schema.TABLES \
   WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> 'stowage_template_ready' AND TABLE_NAME NOT LIKE 'stowage\\_spare\\_%'), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, \
   IFNULL(COLUMN_DEFAULT, '~'), EXTRA, IFNULL(COLLATION_NAME, '~')) ORDER BY TABLE_NAME, ORDINAL_POSITION \
   SEPARATOR ';') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> 'stowage_template_ready' AND TABLE_NAME NOT LIKE 'stowage\\_spare\\_%'), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, \
   IFNULL(SUB_PART, '~')) ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX SEPARATOR ';') \
   FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> 'stowage_template_ready' AND TABLE_NAME NOT LIKE 'stowage\\_spare\\_%'), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, UPDATE_RULE, \
   DELETE_RULE) ORDER BY CONSTRAINT_NAME SEPARATOR ';') FROM information_schema.REFERENTIAL_CONSTRAINTS \
   WHERE CONSTRAINT_SCHEMA = ?), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE) \
   ORDER BY TABLE_NAME, CONSTRAINT_NAME SEPARATOR ';') FROM information_schema.TABLE_CONSTRAINTS \
   WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> 'stowage_template_ready' AND TABLE_NAME NOT LIKE 'stowage\\_spare\\_%'), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, REPLACE(VIEW_DEFINITION, CONCAT('`', ?, '`.'), '')) \
   ORDER BY TABLE_NAME SEPARATOR ';') FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, \
   ACTION_ORDER, ACTION_STATEMENT) ORDER BY TRIGGER_NAME SEPARATOR ';') FROM information_schema.TRIGGERS \
   WHERE TRIGGER_SCHEMA = ?), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION, DTD_IDENTIFIER, \
   SECURITY_TYPE) ORDER BY ROUTINE_NAME SEPARATOR ';') FROM information_schema.ROUTINES \
   WHERE ROUTINE_SCHEMA = ?), \
 (SELECT GROUP_CONCAT(CONCAT_WS(',', EVENT_NAME, EVENT_DEFINITION) ORDER BY EVENT_NAME SEPARATOR ';') \
   FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)))";

async fn definitions(
    conn: &mut sqlx::MySqlConnection,
    schema: &str,
) -> Result<Option<String>, sqlx::Error> {
    let mut query = sqlx::query_scalar(DEFINITIONS);
    for _ in 0..DEFINITIONS.matches('?').count() {
        query = query.bind(schema);
    }
    query.fetch_one(conn).await
}

/// A table's state: its checksum and its next `AUTO_INCREMENT` value.
type State = (Option<u64>, Option<u64>);

/// Each base table of `schema` (but stowage's marks of a template and of a
/// spare) and its state; `None`
/// when it holds something else that cannot be reset (a MariaDB sequence).
async fn tables(
    conn: &mut sqlx::MySqlConnection,
    schema: &str,
) -> Result<Option<BTreeMap<String, State>>, sqlx::Error> {
    let listed: Vec<(String, String, Option<u64>)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR), CAST(AUTO_INCREMENT AS UNSIGNED) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> 'stowage_template_ready' AND TABLE_NAME NOT LIKE 'stowage\\_spare\\_%'",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let mut states = BTreeMap::new();
    for (table, kind, next) in listed {
        match kind.as_str() {
            "BASE TABLE" if plain(&table) => {
                states.insert(table, (None, next));
            }
            "VIEW" | "SYSTEM VIEW" => {}
            _ => return Ok(None),
        }
    }
    if states.is_empty() {
        return Ok(Some(states));
    }
    let list: Vec<String> = states.keys().map(|t| format!("`{schema}`.`{t}`")).collect();
    let sums = sqlx::raw_sql(AssertSqlSafe(format!("CHECKSUM TABLE {}", list.join(", "))))
        .fetch_all(&mut *conn)
        .await?;
    for row in sums {
        let qualified: String = row.try_get(0)?;
        let sum = row.try_get::<Option<u64>, _>(1).or_else(|_| {
            row.try_get::<Option<i64>, _>(1)
                .map(|s| s.map(|s| s as u64))
        })?;
        let table = qualified
            .split_once('.')
            .map_or(qualified.as_str(), |(_, t)| t);
        if let Some(state) = states.get_mut(table) {
            state.0 = sum;
        }
    }
    Ok(Some(states))
}

/// Table names written into statements: those of our own quoting's reach.
fn plain(name: &str) -> bool {
    !name.is_empty() && !name.contains(['`', '.'])
}

/// Reset schema `name`, its sessions gone, to `template`'s state and mark
/// it a spare with table `mark`; `false`, with nothing changed, when it is
/// not equal to the template in everything the reset compares.
pub(super) async fn reset(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    name: &str,
    template: &str,
    mark: &str,
) -> Result<bool, Error> {
    if !plain_name(mark) {
        return Ok(false);
    }
    let fail = |what: &str| test_error(&format!("cannot reset a test database: {what}"), server);
    // MySQL 8 caches what `information_schema.TABLES` says for a day by
    // default; MariaDB has no such setting.
    let _ = sqlx::raw_sql("SET SESSION information_schema_stats_expiry = 0")
        .execute(&mut *conn)
        .await;
    let setup = "SET SESSION group_concat_max_len = 4294967295, SESSION foreign_key_checks = 0";
    sqlx::raw_sql(setup)
        .execute(&mut *conn)
        .await
        .map_err(fail("settings"))?;
    let same = definitions(&mut *conn, name)
        .await
        .map_err(fail("definitions"))?
        == definitions(&mut *conn, template)
            .await
            .map_err(fail("definitions"))?;
    let pristine = tables(&mut *conn, template)
        .await
        .map_err(fail("checksums"))?;
    let found = tables(&mut *conn, name).await.map_err(fail("checksums"))?;
    let (true, Some(pristine), Some(found)) = (same, pristine, found) else {
        return Ok(false);
    };
    if pristine.keys().ne(found.keys()) {
        return Ok(false);
    }
    let mut script = Vec::new();
    for (table, (sum, next)) in &found {
        let (was_sum, was_next) = pristine[table];
        if *sum != was_sum {
            script.push(format!("DELETE FROM `{name}`.`{table}`"));
            if was_sum.is_some_and(|s| s != 0) {
                script.push(format!(
                    "INSERT INTO `{name}`.`{table}` SELECT * FROM `{template}`.`{table}`"
                ));
            }
        }
        if *next != was_next
            && let Some(was_next) = was_next
        {
            script.push(format!(
                "ALTER TABLE `{name}`.`{table}` AUTO_INCREMENT = {was_next}"
            ));
        }
    }
    if !script.is_empty()
        && sqlx::raw_sql(AssertSqlSafe(script.join(";\n")))
            .execute(&mut *conn)
            .await
            .is_err()
    {
        return Ok(false);
    }
    // The check: all of it again (a trigger may have written elsewhere).
    let after = tables(&mut *conn, name).await.map_err(fail("checksums"))?;
    if after.as_ref() != Some(&pristine) {
        return Ok(false);
    }
    let mark_it = format!("CREATE TABLE `{name}`.`{mark}` (spare INT)");
    run!(&mut *conn, mark_it, "cannot mark a reset database", server)?;
    // Marked, and then nobody's: a claim may take it.
    forget_owner(&mut *conn, name).await;
    Ok(true)
}

/// End the finished test's sessions on `name` and wait until they are gone;
/// `false` if they are still there after 5 s.
pub(super) async fn ended(
    conn: &mut sqlx::MySqlConnection,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let started = Instant::now();
    loop {
        let sessions: Vec<u64> = sqlx::query_scalar(
            "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST \
             WHERE DB = ? AND ID <> CONNECTION_ID()",
        )
        .bind(name)
        .fetch_all(&mut *conn)
        .await?;
        if sessions.is_empty() {
            return Ok(true);
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Ok(false);
        }
        for id in sessions {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
                .execute(&mut *conn)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
