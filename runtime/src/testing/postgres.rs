//! PostgreSQL test databases: a template database per migration set,
//! `CREATE DATABASE … TEMPLATE` per test; spares claimed by renaming them.

use super::flow::{Copying, Maint};
use super::names::{
    KEPT, PREFIX, TEMPLATE, kept_name, new_name, plain_name, project, template_hash, with_database,
};
use super::reuse_postgres as reuse;
use super::server::{Entry, Finished, test_error};
use crate::{Error, Migrator};
use sqlx::{AssertSqlSafe, Connection};
use std::time::{Duration, Instant};

/// PostgreSQL.
#[derive(Debug)]
pub(super) struct Postgres;

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

impl Copying for Postgres {
    type Conn = sqlx::PgConnection;

    async fn drop_database(m: &mut M, name: &str) -> Result<(), Error> {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        Self::execute(m, sql, "cannot drop a test database").await
    }

    async fn inventory(m: &mut M) -> Result<Vec<Entry>, Error> {
        let sql = "SELECT d.datname::text, \
                   EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid) \
                   FROM pg_database d \
                   WHERE left(d.datname, 13) IN ($1, $2) OR left(d.datname, 12) = $3";
        let what = "cannot list test databases";
        let found: Vec<(String, bool)> =
            fetch!(m, query_as, fetch_all, sql, [PREFIX, KEPT, TEMPLATE], what)?;
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
    }

    async fn remove(m: &mut M, entry: &Entry) -> Result<bool, Error> {
        let name = entry.name.as_str();
        // One process removes it: another sweeping at the same time
        // leaves it alone. Released as the session ends.
        let sql = "SELECT pg_try_advisory_lock(hashtext('stowage-remove:' || $1))";
        let mine: bool = scalar!(m, sql, [name], "cannot lock")?;
        let (conn, server) = (&mut m.conn, m.server.as_str());
        if !mine {
            return Ok(false);
        }
        if name.starts_with(TEMPLATE) {
            // Gone already, or invalid (a drop cut short), which can
            // only be dropped: the drop below says what is wrong.
            let sql = format!("ALTER DATABASE {name} WITH IS_TEMPLATE false");
            let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await;
        }
        // Without FORCE: one in use is left alone.
        let drop = format!("DROP DATABASE IF EXISTS {name}");
        match sqlx::raw_sql(AssertSqlSafe(drop)).execute(conn).await {
            Ok(_) => Ok(true),
            // In use after all: a test has just connected to it.
            Err(error) if code(&error).as_deref() == Some("55006") => Ok(false),
            Err(error) => Err(test_error("cannot drop a test database", server)(error)),
        }
    }

    async fn keep(m: &mut M, name: &str) -> Result<String, Error> {
        let kept = kept_name(name);
        // The test is over: its sessions (a pool still closing) go.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut m.conn)
        .await
        .map_err(test_error("cannot end the test's sessions", &m.server))?;
        let what = "cannot rename a kept database";
        rename_when_free(&mut m.conn, &m.server, name, &kept, what).await?;
        Ok(kept)
    }

    async fn maintenance(server: &str) -> Result<M, Error> {
        M::open::<sqlx::Postgres>(server).await
    }

    async fn execute(m: &mut M, sql: String, what: &str) -> Result<(), Error> {
        run!(&mut m.conn, sql, what, &m.server)
    }

    async fn lock(m: &mut M, key: &str, wait: Option<Duration>) -> Result<bool, Error> {
        let sql = match wait {
            None => "SELECT pg_try_advisory_lock(hashtext($1))",
            Some(_) => "SELECT true FROM pg_advisory_lock(hashtext($1))",
        };
        scalar!(m, sql, [key], "cannot lock")
    }

    async fn unlock(m: &mut M, key: &str) -> Result<(), Error> {
        let sql = "SELECT pg_advisory_unlock(hashtext($1))";
        let _: bool = scalar!(m, sql, [key], "cannot unlock")?;
        Ok(())
    }

    async fn template_ready(m: &mut M, name: &str) -> Result<bool, Error> {
        // Ready once marked, and described for resets (else built before they were).
        let sql = "SELECT COUNT(*) FROM pg_database WHERE datname = $1 AND datistemplate \
                   AND shobj_description(oid, 'pg_database') LIKE 'stowage-pristine%'";
        let count: i64 = scalar!(m, sql, [name], "cannot look for the template")?;
        Ok(count == 1)
    }

    async fn build_template(m: &mut M, name: &str, migrator: &Migrator) -> Result<(), Error> {
        // A template left half-built by a crash, or built before resets
        // were, is rebuilt.
        let sql = "SELECT COUNT(*) FROM pg_database WHERE datname = $1 AND datistemplate";
        let marked: i64 = scalar!(m, sql, [name], "cannot look for the template")?;
        if marked == 1 {
            let sql = format!("ALTER DATABASE {name} WITH IS_TEMPLATE false");
            Self::execute(m, sql, "cannot unmark an outdated template").await?;
        }
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        Self::execute(m, sql, "cannot drop a half-built template").await?;
        let sql = format!("CREATE DATABASE {name}");
        Self::execute(m, sql, "cannot create the template database").await?;
        let server = m.server.as_str();
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
        Self::execute(m, sql, "cannot describe the template").await?;
        // No one may connect to it from now on, so copies never find it busy.
        let sql = format!("ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false");
        Self::execute(m, sql, "cannot mark the template").await
    }

    /// A spare's name says it is one.
    async fn copy(m: &mut M, template: &str, name: &str, _spare: bool) -> Result<(), Error> {
        copy(m, template, name).await
    }

    fn spare_name(template: &str) -> String {
        format!("{}{}", new_name(), spare_suffix(template))
    }

    async fn claim(m: &mut M, template: &str, name: &str) -> Result<Option<String>, Error> {
        Ok(claim_spare(m, template, name)
            .await?
            .then(|| name.to_owned()))
    }

    async fn since(m: &mut M) -> Option<String> {
        reuse::horizon(&mut m.conn).await.ok()
    }

    async fn ready(m: &mut M, template: &str) -> Result<usize, Error> {
        let sql = "SELECT COUNT(*) FROM pg_database WHERE datname LIKE $1";
        let ready: i64 = scalar!(
            m,
            sql,
            [spare_pattern(template)],
            "cannot count spare copies"
        )?;
        Ok(usize::try_from(ready).unwrap_or(usize::MAX))
    }

    /// One a test has claimed has another name by now.
    async fn drop_spare(m: &mut M, _template: &str, spare: &str) -> Result<(), Error> {
        if !plain_name(spare) {
            return Ok(());
        }
        let sql = format!("DROP DATABASE IF EXISTS {spare}");
        Self::execute(m, sql, "cannot drop a spare copy too many").await
    }

    async fn ended(m: &mut M, name: &str) -> Result<bool, Error> {
        reuse::ended(&mut m.conn, &m.server, name).await
    }

    async fn reset(m: &mut M, db: &Finished) -> Result<Option<String>, Error> {
        let Some(since) = db.since.as_deref() else {
            return Ok(None);
        };
        let spare = Self::spare_name(&db.template);
        let (conn, server) = (&mut m.conn, m.server.as_str());
        let reset = reuse::reset_into(conn, server, &db.name, &db.template, since, &spare).await?;
        Ok(reset.then_some(spare))
    }
}

/// A maintenance connection, as the flow holds it.
type M = Maint<sqlx::PgConnection>;

/// Copy the template into a new database `name`.
async fn copy(m: &mut M, template: &str, name: &str) -> Result<(), Error> {
    let (conn, server) = (&mut m.conn, m.server.as_str());
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
async fn claim_spare(m: &mut M, template: &str, name: &str) -> Result<bool, Error> {
    let sql = "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY random()";
    let what = "cannot look for spare copies";
    let pattern = spare_pattern(template);
    let spares: Vec<String> = fetch!(m, query_scalar, fetch_all, sql, [pattern], what)?;
    for spare in spares.iter().filter(|s| plain_name(s)) {
        // Another test may have claimed it first; then try the next.
        let rename = format!("ALTER DATABASE {spare} RENAME TO {name}");
        if sqlx::raw_sql(AssertSqlSafe(rename))
            .execute(&mut m.conn)
            .await
            .is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}
