//! PostgreSQL test databases: a template database per migration set,
//! `CREATE DATABASE … TEMPLATE` per test; spares claimed by renaming them.

use super::TestDb;
use super::names::{
    KEPT, PREFIX, TEMPLATE, kept_name, new_name, plain_name, project, template_hash, with_database,
};
use super::reuse_postgres as reuse;
use super::server::{Entry, Finished, TestServer, test_error};
use crate::dialect::BoxFuture;
use crate::{Error, Migrator};
use sqlx::{AssertSqlSafe, Connection};
use std::time::{Duration, Instant};

/// PostgreSQL.
#[derive(Debug)]
pub(super) struct Postgres;

impl TestServer for Postgres {
    fn database_url(&self, server: &str, name: &str) -> Result<String, Error> {
        Ok(with_database(server, name))
    }

    fn create<'a>(
        &'a self,
        db: &'a mut TestDb,
        template: &'a str,
        migrator: &'a Migrator,
        claim: bool,
    ) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        Box::pin(async move {
            // One maintenance connection makes sure of the template, then
            // claims a spare copy or makes one.
            let server = db.server.as_str();
            let mut conn = maintenance(server).await?;
            ensure_template(&mut conn, server, template, migrator).await?;
            db.created = true;
            let mut copied = None;
            if !claim || !claim_spare(&mut conn, server, template, &db.name).await? {
                let started = Instant::now();
                copy(&mut conn, server, template, &db.name).await?;
                copied = Some(started.elapsed());
            }
            // Without it the database is dropped at the end, not reset.
            db.since = reuse::horizon(&mut conn).await.ok();
            Ok(copied)
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
                taken = sqlx::query_scalar(
                    "SELECT pg_try_advisory_lock(hashtext('stowage-spare:' || $1), $2)",
                )
                .bind(template)
                .bind(n)
                .fetch_one(&mut conn)
                .await
                .map_err(test_error("cannot lock", server))?;
                if taken {
                    break;
                }
            }
            if !taken {
                return Ok(());
            }
            if ready(&mut conn, server, &spare_pattern(template)).await? >= wanted {
                return Ok(());
            }
            let spare = format!("{name}{}", spare_suffix(template));
            copy(&mut conn, server, template, &spare).await?;
            trim(&mut conn, server, template, &spare, wanted).await?;
            conn.close()
                .await
                .map_err(test_error("cannot disconnect", server))
        })
    }

    fn recycle<'a>(
        &'a self,
        db: &'a Finished,
        wanted: usize,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let Some(since) = db.since.as_deref() else {
                return Ok(false);
            };
            reuse::recycle(
                &db.server,
                &db.name,
                &db.template,
                since,
                &spare_pattern(&db.template),
                &spare_suffix(&db.template),
                wanted,
            )
            .await
        })
    }

    fn drop_database<'a>(
        &'a self,
        server: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut conn = maintenance(server).await?;
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            run!(&mut conn, sql, "cannot drop a test database", server)
        })
    }

    fn inventory<'a>(&'a self, server: &'a str) -> BoxFuture<'a, Result<Vec<Entry>, Error>> {
        Box::pin(async move {
            let mut conn = maintenance(server).await?;
            let found: Vec<(String, bool)> = sqlx::query_as(
                "SELECT d.datname::text, EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid) \
                 FROM pg_database d WHERE left(d.datname, 13) IN ($1, $2) OR left(d.datname, 12) = $3",
            )
            .bind(PREFIX)
            .bind(KEPT)
            .bind(TEMPLATE)
            .fetch_all(&mut conn)
            .await
            .map_err(test_error("cannot list test databases", server))?;
            Ok(found
                .into_iter()
                .map(|(name, in_use)| Entry {
                    name,
                    in_use,
                    spare_of: None,
                    owner: None,
                    kept: false,
                })
                .collect())
        })
    }

    fn remove<'a>(
        &'a self,
        server: &'a str,
        entry: &'a Entry,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let name = entry.name.as_str();
            if !plain_name(name) {
                return Ok(false);
            }
            let mut conn = maintenance(server).await?;
            // One process removes it: another sweeping at the same time
            // leaves it alone. Released as the session ends.
            let mine: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_lock(hashtext('stowage-remove:' || $1))",
            )
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(test_error("cannot lock", server))?;
            if !mine {
                return Ok(false);
            }
            if name.starts_with(TEMPLATE) {
                // Gone already, or invalid (a drop cut short), which can
                // only be dropped: the drop below says what is wrong.
                let sql = format!("ALTER DATABASE {name} WITH IS_TEMPLATE false");
                let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
            }
            // Without FORCE: one in use is left alone.
            let drop = format!("DROP DATABASE IF EXISTS {name}");
            match sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut conn).await {
                Ok(_) => Ok(true),
                // In use after all: a test has just connected to it.
                Err(error) if code(&error).as_deref() == Some("55006") => Ok(false),
                Err(error) => Err(test_error("cannot drop a test database", server)(error)),
            }
        })
    }

    fn keep<'a>(&'a self, server: &'a str, name: &'a str) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(async move {
            let kept = kept_name(name);
            let mut conn = maintenance(server).await?;
            // The test is over: its sessions (a pool still closing) go.
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(name)
            .execute(&mut conn)
            .await
            .map_err(test_error("cannot end the test's sessions", server))?;
            rename_when_free(
                &mut conn,
                server,
                name,
                &kept,
                "cannot rename a kept database",
            )
            .await?;
            Ok(kept)
        })
    }
}

/// Rename database `from` to `to` once the sessions just ended on it (a
/// test's, or a reset's own) have left: up to 5 s.
pub(super) async fn rename_when_free(
    conn: &mut sqlx::PgConnection,
    server: &str,
    from: &str,
    to: &str,
    what: &str,
) -> Result<(), Error> {
    let rename = format!("ALTER DATABASE {from} RENAME TO {to}");
    let started = Instant::now();
    loop {
        match sqlx::raw_sql(AssertSqlSafe(rename.as_str()))
            .execute(&mut *conn)
            .await
        {
            Ok(_) => return Ok(()),
            // "being accessed by other users": a session still leaving.
            Err(error)
                if code(&error).as_deref() == Some("55006")
                    && started.elapsed() < Duration::from_secs(5) =>
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(error) => return Err(test_error(what, server)(error)),
        }
    }
}

/// The SQLSTATE of a server's error.
fn code(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned())
}

/// How many spares match `pattern`.
pub(super) async fn ready(
    conn: &mut sqlx::PgConnection,
    server: &str,
    pattern: &str,
) -> Result<usize, Error> {
    let ready: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname LIKE $1")
        .bind(pattern)
        .fetch_one(conn)
        .await
        .map_err(test_error("cannot count spare copies", server))?;
    Ok(usize::try_from(ready).unwrap_or(usize::MAX))
}

/// Drop `spare` of `template`, just made ready, when more than `wanted`
/// spares are now ready. Several made at once (copies ahead, resets) each
/// counted fewer before they began; counted again one at a time, under a
/// lock, no more than `wanted` stay. One a test has claimed meanwhile
/// has another name, and stays.
pub(super) async fn trim(
    conn: &mut sqlx::PgConnection,
    server: &str,
    template: &str,
    spare: &str,
    wanted: usize,
) -> Result<(), Error> {
    // Held until unlocked or the session ends (an error closes it).
    sqlx::query("SELECT pg_advisory_lock(hashtext('stowage-trim:' || $1))")
        .bind(template)
        .execute(&mut *conn)
        .await
        .map_err(test_error("cannot lock", server))?;
    if ready(conn, server, &spare_pattern(template)).await? > wanted && plain_name(spare) {
        let sql = format!("DROP DATABASE IF EXISTS {spare}");
        run!(&mut *conn, sql, "cannot drop a spare copy too many", server)?;
    }
    sqlx::query("SELECT pg_advisory_unlock(hashtext('stowage-trim:' || $1))")
        .bind(template)
        .execute(&mut *conn)
        .await
        .map_err(test_error("cannot unlock", server))?;
    Ok(())
}

async fn maintenance(server: &str) -> Result<sqlx::PgConnection, Error> {
    crate::connect::connect_one::<sqlx::Postgres>(server, Duration::from_secs(10)).await
}

/// Build the template once, under a lock, unless it is ready.
async fn ensure_template(
    conn: &mut sqlx::PgConnection,
    server: &str,
    name: &str,
    migrator: &Migrator,
) -> Result<(), Error> {
    // Ready once marked, and described for resets (else built before they were).
    let ready = "SELECT COUNT(*) FROM pg_database WHERE datname = $1 AND datistemplate \
                 AND shobj_description(oid, 'pg_database') LIKE 'stowage-pristine%'";
    let count: i64 = sqlx::query_scalar(ready)
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(test_error("cannot look for the template", server))?;
    if count == 1 {
        return Ok(());
    }
    // One process builds it; the others wait on the lock, then find it ready.
    let lock = "SELECT pg_advisory_lock(hashtext('stowage-template:' || $1))";
    sqlx::query(lock)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(test_error("cannot lock", server))?;
    let result = async {
        let count: i64 = sqlx::query_scalar(ready)
            .bind(name)
            .fetch_one(&mut *conn)
            .await
            .map_err(test_error("cannot look for the template", server))?;
        if count == 1 {
            return Ok(());
        }
        // A template left half-built by a crash, or built before resets
        // were, is rebuilt.
        let marked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_database WHERE datname = $1 AND datistemplate",
        )
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(test_error("cannot look for the template", server))?;
        if marked == 1 {
            let sql = format!("ALTER DATABASE {name} WITH IS_TEMPLATE false");
            run!(
                &mut *conn,
                sql,
                "cannot unmark an outdated template",
                server
            )?;
        }
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        run!(&mut *conn, sql, "cannot drop a half-built template", server)?;
        let sql = format!("CREATE DATABASE {name}");
        run!(
            &mut *conn,
            sql,
            "cannot create the template database",
            server
        )?;
        let url = with_database(server, name);
        let mut template = sqlx::PgConnection::connect(&url)
            .await
            .map_err(test_error("cannot connect to the template", server))?;
        migrator.run(&mut template).await?;
        // What it holds, for resetting its copies; without it (a sequence
        // the user may not read, say) they are dropped instead.
        let pristine = reuse::pristine(&mut template).await.map_or_else(
            |_| "stowage-pristine unknown".to_owned(),
            |p| p.to_comment(),
        );
        template
            .close()
            .await
            .map_err(test_error("cannot close the template", server))?;
        let sql = format!(
            "COMMENT ON DATABASE {name} IS {}",
            reuse::literal(&pristine)
        );
        run!(&mut *conn, sql, "cannot describe the template", server)?;
        // No one may connect to it from now on, so copies never find it busy.
        let sql = format!("ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false");
        run!(&mut *conn, sql, "cannot mark the template", server)?;
        Ok(())
    }
    .await;
    let unlock = "SELECT pg_advisory_unlock(hashtext('stowage-template:' || $1))";
    let _ = sqlx::query(unlock).bind(name).execute(&mut *conn).await;
    result
}

/// Copy the template into a new database `name`.
async fn copy(
    conn: &mut sqlx::PgConnection,
    server: &str,
    template: &str,
    name: &str,
) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        let result = sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {template}"
        )))
        .execute(&mut *conn)
        .await;
        match result {
            Ok(_) => return Ok(()),
            // "source database is being accessed by other users": the server has
            // waited 5 s for them to leave; once more, for a builder that is
            // just disconnecting.
            Err(error)
                if attempt < 1
                    && error
                        .as_database_error()
                        .and_then(|db| db.code())
                        .as_deref()
                        == Some("55006") =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => {
                return Err(test_error(
                    &format!("cannot copy the template {template} (is a session connected to it?)"),
                    server,
                )(error));
            }
        }
    }
}

/// The end of the name of a spare of `template`.
fn spare_suffix(template: &str) -> String {
    let hash = template_hash(template);
    format!("_spare_{}", &hash[..hash.len().min(12)])
}

/// A `LIKE` pattern for the names of this project's spares of `template`.
fn spare_pattern(template: &str) -> String {
    format!("{PREFIX}{}_%{}", project(), spare_suffix(template)).replace('_', "\\_")
}

/// Claim a spare copy of `template` by renaming it to `name`; false if none is left.
async fn claim_spare(
    conn: &mut sqlx::PgConnection,
    server: &str,
    template: &str,
    name: &str,
) -> Result<bool, Error> {
    let spares: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY random()",
    )
    .bind(spare_pattern(template))
    .fetch_all(&mut *conn)
    .await
    .map_err(test_error("cannot look for spare copies", server))?;
    for spare in spares.iter().filter(|s| plain_name(s)) {
        // Another test may have claimed it first; then try the next.
        let rename = format!("ALTER DATABASE {spare} RENAME TO {name}");
        if sqlx::raw_sql(AssertSqlSafe(rename))
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}
