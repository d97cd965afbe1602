//! MySQL and MariaDB test databases: a template schema per migration set,
//! its objects recreated from their own definitions per test; spares
//! claimed by dropping the table that marks them, claims dated in
//! `stowage_claims.claims`.

use super::TestDb;
use super::names::{
    PREFIX, made_before, new_name, now_secs, plain_name, template_hash, with_database,
};
use super::server::{TestServer, test_error};
use crate::dialect::BoxFuture;
use crate::{Error, Migrator};
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::time::Duration;

/// MySQL and MariaDB.
#[derive(Debug)]
pub(super) struct MySql;

impl TestServer for MySql {
    fn database_url(&self, server: &str, name: &str) -> Result<String, Error> {
        Ok(with_database(server, name))
    }

    fn create<'a>(
        &'a self,
        db: &'a mut TestDb,
        template: &'a str,
        migrator: &'a Migrator,
        claim: bool,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            // One maintenance connection makes sure of the template, then
            // claims a spare copy or makes one.
            let server = db.server.clone();
            let server = server.as_str();
            let mut conn = maintenance(server).await?;
            ensure_template(&mut conn, server, template, migrator).await?;
            db.created = true;
            let claimed = match claim {
                true => claim_spare(&mut conn, server, template).await?,
                false => None,
            };
            match claimed {
                Some(spare) => {
                    db.url = with_database(server, &spare);
                    db.name = spare;
                }
                None => copy(&mut conn, server, template, &db.name, None).await?,
            }
            Ok(())
        })
    }

    fn create_empty<'a>(&'a self, db: &'a mut TestDb) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let server = db.server.as_str();
            let mut conn = maintenance(server).await?;
            db.created = true;
            let sql = format!("CREATE DATABASE {}", db.name);
            run!(&mut conn, sql, "cannot create a test database", server)
        })
    }

    fn makes_spares(&self) -> bool {
        true
    }

    fn make_spare<'a>(
        &'a self,
        server: &'a str,
        template: &'a str,
        wanted: usize,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let slots = i32::try_from(wanted).unwrap_or(i32::MAX);
            let name = new_name();
            // A slot lock per spare being made bounds them to `wanted`;
            // closing the connection releases it.
            let mut conn = maintenance(server).await?;
            let mut taken = false;
            for n in 0..slots {
                let lock: Option<i64> =
                    sqlx::query_scalar("SELECT GET_LOCK(CONCAT('stowage-spare:', ?, ':', ?), 0)")
                        .bind(template)
                        .bind(n)
                        .fetch_one(&mut conn)
                        .await
                        .map_err(test_error("cannot lock", server))?;
                taken = lock == Some(1);
                if taken {
                    break;
                }
            }
            if !taken {
                return Ok(());
            }
            let sql = format!(
                "CREATE DATABASE IF NOT EXISTS stowage_claims; \
             CREATE TABLE IF NOT EXISTS {CLAIMS} \
             (name VARCHAR(64) PRIMARY KEY, claimed_at BIGINT UNSIGNED NOT NULL)"
            );
            run!(&mut conn, sql, "cannot create the table of claims", server)?;
            let mark = spare_mark(template);
            let ready: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_NAME = ? AND LEFT(TABLE_SCHEMA, 13) = ?",
            )
            .bind(&mark)
            .bind(PREFIX)
            .fetch_one(&mut conn)
            .await
            .map_err(test_error("cannot count spare copies", server))?;
            if usize::try_from(ready).unwrap_or(0) >= wanted {
                return Ok(());
            }
            copy(&mut conn, server, template, &name, Some(&mark)).await?;
            conn.close()
                .await
                .map_err(test_error("cannot disconnect", server))
        })
    }

    fn drop_database<'a>(
        &'a self,
        server: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut conn = maintenance(server).await?;
            let sql = format!("DROP DATABASE IF EXISTS {name}");
            run!(&mut conn, sql, "cannot drop a test database", server)?;
            forget_claim(&mut conn, name).await;
            Ok(())
        })
    }

    fn sweep<'a>(
        &'a self,
        server: &'a str,
        cutoff: u64,
        spares_only: bool,
    ) -> BoxFuture<'a, Result<usize, Error>> {
        Box::pin(async move {
            let old = |name: &str| made_before(name, cutoff);
            let mut dropped = 0;
            let mut conn = maintenance(server).await?;
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
                 WHERE LEFT(SCHEMA_NAME, 13) = ?",
            )
            .bind(PREFIX)
            .fetch_all(&mut conn)
            .await
            .map_err(test_error("cannot list test databases", server))?;
            // A claimed spare is as old as its claim; there may be no claims yet.
            let claims: Vec<(String, u64)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT CAST(name AS CHAR), claimed_at FROM {CLAIMS}"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            let marks: Vec<(String, String)> = sqlx::query_as(
                "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
                 WHERE LEFT(TABLE_SCHEMA, 13) = ? AND LEFT(TABLE_NAME, 14) = 'stowage_spare_'",
            )
            .bind(PREFIX)
            .fetch_all(&mut conn)
            .await
            .map_err(test_error("cannot list spare copies", server))?;
            for name in names.iter().filter(|n| plain_name(n)) {
                let claimed = claims.iter().find(|(c, _)| c == name).map(|(_, at)| *at);
                if !claimed.map_or_else(|| old(name), |at| at < cutoff) {
                    continue;
                }
                let mark = marks.iter().find(|(schema, _)| schema == name);
                if spares_only && mark.is_none() {
                    continue;
                }
                if let Some((_, mark)) = mark {
                    // An unclaimed spare: claim it for dropping, unless a test
                    // has just claimed it.
                    let claim = format!("DROP TABLE `{name}`.`{mark}`");
                    if sqlx::raw_sql(AssertSqlSafe(claim))
                        .execute(&mut conn)
                        .await
                        .is_err()
                    {
                        continue;
                    }
                } else {
                    let users: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?",
                    )
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(test_error("cannot list sessions", server))?;
                    if users > 0 {
                        continue;
                    }
                }
                let sql = format!("DROP DATABASE IF EXISTS {name}");
                run!(&mut conn, sql, "cannot drop a test database", server)?;
                forget_claim(&mut conn, name).await;
                dropped += 1;
            }
            Ok(dropped)
        })
    }
}

async fn maintenance(server: &str) -> Result<sqlx::MySqlConnection, Error> {
    crate::connect::connect_one::<sqlx::MySql>(server, Duration::from_secs(10)).await
}

/// The table whose presence says a template is complete.
const TEMPLATE_READY: &str = "stowage_template_ready";

async fn template_ready(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    name: &str,
) -> Result<bool, Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
    )
    .bind(name)
    .bind(TEMPLATE_READY)
    .fetch_one(conn)
    .await
    .map_err(test_error("cannot look for the template", server))?;
    Ok(count == 1)
}

/// Build the template once, under a lock, unless it is ready.
async fn ensure_template(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    name: &str,
    migrator: &Migrator,
) -> Result<(), Error> {
    if template_ready(conn, server, name).await? {
        return Ok(());
    }
    let lock: Option<i64> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('stowage-template:', ?), 600)")
            .bind(name)
            .fetch_one(&mut *conn)
            .await
            .map_err(test_error("cannot lock", server))?;
    if lock != Some(1) {
        return Err(Error::LockTimeout {
            waited: Duration::from_secs(600),
            holder: None,
        });
    }
    let result = async {
        if template_ready(conn, server, name).await? {
            return Ok(());
        }
        let sql = format!("DROP DATABASE IF EXISTS {name}");
        run!(&mut *conn, sql, "cannot drop a half-built template", server)?;
        let sql = format!("CREATE DATABASE {name}");
        run!(&mut *conn, sql, "cannot create the template schema", server)?;
        let url = with_database(server, name);
        let mut template = sqlx::MySqlConnection::connect(&url)
            .await
            .map_err(test_error("cannot connect to the template", server))?;
        migrator.run(&mut template).await?;
        let sql = format!("CREATE TABLE {TEMPLATE_READY} (ready INT)");
        run!(&mut template, sql, "cannot mark the template", server)?;
        Ok(())
    }
    .await;
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('stowage-template:', ?))")
        .bind(name)
        .execute(&mut *conn)
        .await;
    result
}

/// Recreate the template schema's objects in a new schema, from their own
/// definitions, in one multi-statement round trip per kind.
async fn copy(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    template: &str,
    name: &str,
    spare_mark: Option<&str>,
) -> Result<(), Error> {
    let fail = |what: &str| {
        test_error(
            &format!("cannot copy the template {template}: {what}"),
            server,
        )
    };
    let names = |kind: &str| {
        format!(
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{template}' \
             AND TABLE_TYPE = '{kind}' AND TABLE_NAME <> '{TEMPLATE_READY}' ORDER BY TABLE_NAME"
        )
    };
    let tables: Vec<String> = sqlx::query_scalar(AssertSqlSafe(names("BASE TABLE")))
        .fetch_all(&mut *conn)
        .await
        .map_err(fail("tables"))?;
    let views: Vec<String> = sqlx::query_scalar(AssertSqlSafe(names("VIEW")))
        .fetch_all(&mut *conn)
        .await
        .map_err(fail("views"))?;
    let mut script = vec![
        format!("CREATE DATABASE {name}"),
        format!("USE {name}"),
        "SET FOREIGN_KEY_CHECKS = 0".to_owned(),
    ];
    for table in &tables {
        let sql = format!("SHOW CREATE TABLE `{template}`.`{table}`");
        script.push(
            show_create(&mut *conn, sql, 1)
                .await
                .map_err(fail("table definitions"))?,
        );
    }
    // The rows (seed data, the history) in one transaction: one commit.
    script.push("START TRANSACTION".to_owned());
    for table in &tables {
        script.push(format!(
            "INSERT INTO `{name}`.`{table}` SELECT * FROM `{template}`.`{table}`"
        ));
    }
    script.push("COMMIT".to_owned());
    for view in &views {
        let sql = format!("SHOW CREATE VIEW `{template}`.`{view}`");
        let definition = show_create(&mut *conn, sql, 1)
            .await
            .map_err(fail("view definitions"))?;
        script.push(definition.replace(&format!("`{template}`."), ""));
    }
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
    )
    .bind(template)
    .fetch_all(&mut *conn)
    .await
    .map_err(fail("triggers"))?;
    for trigger in &triggers {
        let sql = format!("SHOW CREATE TRIGGER `{template}`.`{trigger}`");
        script.push(
            show_create(&mut *conn, sql, 2)
                .await
                .map_err(fail("trigger definitions"))?,
        );
    }
    let routines: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(ROUTINE_TYPE AS CHAR), CAST(ROUTINE_NAME AS CHAR) FROM information_schema.ROUTINES \
         WHERE ROUTINE_SCHEMA = ?",
    )
    .bind(template)
    .fetch_all(&mut *conn)
    .await
    .map_err(fail("routines"))?;
    for (kind, routine) in &routines {
        let sql = format!("SHOW CREATE {kind} `{template}`.`{routine}`");
        script.push(
            show_create(&mut *conn, sql, 2)
                .await
                .map_err(fail("routine definitions"))?,
        );
    }
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

/// Where claims are dated: a claimed spare keeps the name (and so the
/// date) it was made with, and [`cleanup`](super::cleanup) must not take it
/// for an old one.
const CLAIMS: &str = "stowage_claims.claims";

/// The table that marks a schema as a complete, unclaimed spare of `template`.
fn spare_mark(template: &str) -> String {
    format!("stowage_spare_{}", template_hash(template))
}

/// Claim a spare copy of `template` by dropping its mark; its name, if any is left.
async fn claim_spare(
    conn: &mut sqlx::MySqlConnection,
    server: &str,
    template: &str,
) -> Result<Option<String>, Error> {
    let mark = spare_mark(template);
    let spares: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_SCHEMA AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_NAME = ? AND LEFT(TABLE_SCHEMA, 13) = ? ORDER BY RAND()",
    )
    .bind(&mark)
    .bind(PREFIX)
    .fetch_all(&mut *conn)
    .await
    .map_err(test_error("cannot look for spare copies", server))?;
    for spare in spares.into_iter().filter(|s| plain_name(s)) {
        // Only one session can drop the mark; the others try the next.
        let claim = format!("DROP TABLE `{spare}`.`{mark}`");
        if sqlx::raw_sql(AssertSqlSafe(claim))
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            // Without the date, cleanup goes by the name's: harmless but early.
            let _ = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {CLAIMS} (name, claimed_at) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE claimed_at = VALUES(claimed_at)"
            )))
            .bind(&spare)
            .bind(now_secs())
            .execute(&mut *conn)
            .await;
            return Ok(Some(spare));
        }
    }
    Ok(None)
}

/// Forget the claim of a database that is gone (there may be none).
async fn forget_claim(conn: &mut sqlx::MySqlConnection, name: &str) {
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {CLAIMS} WHERE name = ?"
    )))
    .bind(name)
    .execute(conn)
    .await;
}
