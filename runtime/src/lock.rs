//! The migration lock: one process at a time migrates a database.
//!
//! PostgreSQL: a session advisory lock keyed by database + schema + table,
//! polled with `pg_try_advisory_lock`. MySQL: `GET_LOCK` on a name derived
//! from the same, polled the same way. SQLite: `BEGIN IMMEDIATE` with a busy
//! timeout; the whole run is that one write transaction.

use crate::conn::{Conn, Ty, Value};
use crate::history::Table;
use crate::{Dialect, Error};
use std::time::{Duration, Instant};

fn key_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "hashtextextended('stowage:' || current_database() || ':' || $1, 0)",
        _ => "CONCAT('stowage:', LEFT(SHA1(CONCAT(COALESCE(DATABASE(), ''), ':', ?)), 40))",
    }
}

/// Take the lock, waiting up to `timeout`; say who holds it while waiting.
pub(crate) async fn acquire(
    conn: &mut Conn<'_>,
    table: &Table,
    timeout: Duration,
) -> Result<(), Error> {
    if table.dialect == Dialect::Sqlite {
        let millis = timeout.as_millis().min(i32::MAX as u128);
        conn.script(format!("PRAGMA busy_timeout = {millis}"))
            .await
            .map_err(Error::db("cannot set the SQLite busy timeout"))?;
        return match conn.script("BEGIN IMMEDIATE".to_owned()).await {
            Ok(()) => Ok(()),
            Err(error) if is_busy(&error) => Err(Error::LockTimeout {
                waited: timeout,
                holder: Some("another connection writing to the database file".to_owned()),
            }),
            Err(error) => Err(Error::db(
                "cannot lock the SQLite database (BEGIN IMMEDIATE)",
            )(error)),
        };
    }
    let try_lock = match table.dialect {
        Dialect::Postgres => format!(
            "SELECT CASE WHEN pg_try_advisory_lock({}) THEN 1::bigint ELSE 0::bigint END",
            key_sql(table.dialect)
        ),
        _ => format!(
            "SELECT CAST(GET_LOCK({}, 0) AS SIGNED)",
            key_sql(table.dialect)
        ),
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    let mut next_report = Duration::ZERO;
    loop {
        let rows = conn
            .fetch(
                try_lock.clone(),
                vec![Value::Text(table.key.clone())],
                &[Ty::OptI64],
            )
            .await
            .map_err(Error::db("cannot take the migration lock"))?;
        match rows
            .first()
            .and_then(|row| row.first())
            .and_then(|cell| cell.i64())
        {
            Some(1) => {
                if next_report > Duration::ZERO {
                    tracing::info!(waited = ?started.elapsed(), "took the migration lock");
                }
                return Ok(());
            }
            Some(0) => {}
            _ => {
                return Err(Error::InvalidConfig(
                    "the database refused the migration lock (GET_LOCK returned NULL)".to_owned(),
                ));
            }
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(Error::LockTimeout {
                waited,
                holder: holder(conn, table).await,
            });
        }
        if waited >= next_report {
            let holder = holder(conn, table).await;
            tracing::warn!(
                holder = holder.as_deref().unwrap_or("unknown"),
                waited = ?waited,
                "waiting for the migration lock held by {}",
                holder.as_deref().unwrap_or("another session")
            );
            next_report = waited + Duration::from_secs(5);
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(waited)) + jitter(pause)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Release the lock. For SQLite, `commit` says whether to keep the work.
pub(crate) async fn release(conn: &mut Conn<'_>, table: &Table, commit: bool) -> Result<(), Error> {
    let unlock = match table.dialect {
        Dialect::Sqlite => {
            let sql = if commit { "COMMIT" } else { "ROLLBACK" };
            return conn.script(sql.to_owned()).await.map_err(Error::db(format!(
                "cannot end the SQLite transaction ({sql})"
            )));
        }
        Dialect::Postgres => format!(
            "SELECT CASE WHEN pg_advisory_unlock({}) THEN 1::bigint ELSE 0::bigint END",
            key_sql(table.dialect)
        ),
        Dialect::MySql => format!(
            "SELECT CAST(RELEASE_LOCK({}) AS SIGNED)",
            key_sql(table.dialect)
        ),
    };
    let rows = conn
        .fetch(unlock, vec![Value::Text(table.key.clone())], &[Ty::OptI64])
        .await
        .map_err(Error::db("cannot release the migration lock"))?;
    if rows
        .first()
        .and_then(|row| row.first())
        .and_then(|cell| cell.i64())
        != Some(1)
    {
        tracing::warn!("the migration lock was not held when releasing it");
    }
    Ok(())
}

/// Step outside the run's transaction for a migration that must run
/// without one. Only SQLite's lock is a transaction: it is committed here
/// (keeping the work so far) and taken again by [`resume`]; the advisory
/// locks of PostgreSQL and MySQL stay held.
pub(crate) async fn suspend(conn: &mut Conn<'_>, table: &Table) -> Result<(), Error> {
    if table.dialect != Dialect::Sqlite {
        return Ok(());
    }
    conn.script("COMMIT".to_owned())
        .await
        .map_err(Error::db("cannot commit before a no-transaction migration"))
}

/// Take SQLite's lock again after [`suspend`].
pub(crate) async fn resume(conn: &mut Conn<'_>, table: &Table) -> Result<(), Error> {
    if table.dialect != Dialect::Sqlite {
        return Ok(());
    }
    conn.script("BEGIN IMMEDIATE".to_owned())
        .await
        .map_err(Error::db(
            "cannot lock the SQLite database again after a no-transaction migration",
        ))
}

/// Who holds the lock, as the server tells.
async fn holder(conn: &mut Conn<'_>, table: &Table) -> Option<String> {
    let sql = match table.dialect {
        Dialect::Postgres => format!(
            "SELECT 'pid ' || a.pid || coalesce(' (' || nullif(a.application_name, '') || ')', '') \
             || ' from ' || coalesce(host(a.client_addr), 'a local socket') \
             || ', connected at ' || to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid() \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = {} LIMIT 1",
            key_sql(table.dialect)
        ),
        Dialect::MySql => format!(
            "SELECT CONCAT('connection ', p.ID, ' of ', p.USER, ' from ', p.HOST) \
             FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK({})",
            key_sql(table.dialect)
        ),
        Dialect::Sqlite => return None,
    };
    let rows = conn
        .fetch(sql, vec![Value::Text(table.key.clone())], &[Ty::OptText])
        .await
        .ok()?;
    rows.first()?.first()?.text().map(str::to_owned)
}

fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.message().contains("locked") || db.message().contains("busy"))
}

/// Up to a quarter of `pause`, so that waiting processes do not poll in step.
fn jitter(pause: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let quarter = pause.as_nanos() as u64 / 4;
    Duration::from_nanos(if quarter == 0 {
        0
    } else {
        u64::from(nanos) % quarter
    })
}
