//! The lock on a Galera cluster (`wsrep_on`), where `GET_LOCK` holds on one
//! node only: a lease row in `<table>_lock`, one per history table.
//!
//! Taking it is an `INSERT` of the row (or, when the row's lease has
//! expired, an `UPDATE` that takes it over). Two nodes writing it at once
//! cannot both commit: the cluster's certification refuses one (a deadlock
//! error), and a node that has the row already refuses the insert (a
//! duplicate key). The holder renews the lease on a connection of its own
//! while it migrates; a holder that crashes stops renewing, and the lease
//! expires after [`TTL`]. Reads under the lease wait for the cluster to have
//! applied everything committed before (`wsrep_sync_wait`), so the holder
//! sees the history the previous holder wrote.

use crate::engine::connection::{Conn, Ty, Value};
use crate::engine::history::Table;
use crate::engine::lock::{LEASE_ABANDONED, LEASE_HELD, LEASE_RELEASED, Lease, jitter};
use crate::Error;
use crate::dialect::SqlDialect;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How long a lease lasts without renewal.
const TTL: Duration = Duration::from_secs(30);
/// How long it lasts when nothing can renew it while a migration runs (a
/// lent connection, with no pool to open another from).
const TTL_UNRENEWED: Duration = Duration::from_secs(600);

/// Whether the server is a node of a Galera cluster.
pub(super) async fn is_galera(conn: &mut Conn<'_>) -> Result<bool, Error> {
    let rows = conn
        .fetch(
            "SHOW VARIABLES WHERE Variable_name = 'wsrep_on'".to_owned(),
            Vec::new(),
            &[Ty::Text, Ty::Text],
        )
        .await
        .map_err(Error::db("cannot ask whether the server is in a Galera cluster"))?;
    Ok(rows.iter().any(|row| row.get(1).and_then(|c| c.text()) == Some("ON")))
}

/// Take the lease of `table`'s lock, waiting up to `timeout`, and keep it
/// renewed; stored in `table.lease` until `release`.
pub(super) async fn take(
    conn: &mut Conn<'_>,
    table: &Table,
    timeout: Duration,
) -> Result<(), Error> {
    let lock_table = table.sibling("lock", "the table of the cluster's migration lock")?;
    let name = &lock_table.name;
    conn.script(format!(
        "CREATE TABLE IF NOT EXISTS {name} (id INT PRIMARY KEY, holder VARCHAR(255) NOT NULL, \
         expires_at DATETIME(6) NOT NULL) ENGINE = InnoDB"
    ))
    .await
    .map_err(Error::db("cannot create the table of the migration lock"))?;
    let renewer = conn.open_another().await.transpose().map_err(Error::db(
        "cannot open the connection that renews the migration lock",
    ))?;
    let ttl = match renewer {
        Some(_) => TTL,
        None => TTL_UNRENEWED,
    };
    let token = format!(
        "{} at {:?}",
        crate::engine::history::applied_by(),
        std::time::SystemTime::now()
    );
    let token: String = token.chars().take(255).collect();
    let holder = Value::Text(token.clone());
    let seconds = ttl.as_secs();
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let inserted = conn
            .execute(
                format!(
                    "INSERT INTO {name} (id, holder, expires_at) \
                     VALUES (1, ?, NOW(6) + INTERVAL {seconds} SECOND)"
                ),
                vec![holder.clone()],
            )
            .await;
        let taken = match inserted {
            Ok(_) => true,
            Err(error) if is_contended(&error) => {
                // Held: take it over only if its lease has run out.
                let expired = conn
                    .execute(
                        format!(
                            "UPDATE {name} SET holder = ?, expires_at = NOW(6) + INTERVAL {seconds} \
                             SECOND WHERE id = 1 AND expires_at < NOW(6)"
                        ),
                        vec![holder.clone()],
                    )
                    .await;
                match expired {
                    Ok(1) => {
                        tracing::warn!("took over the migration lock of a holder that stopped renewing it");
                        true
                    }
                    Ok(_) => false,
                    Err(error) if is_contended(&error) => false,
                    Err(error) => return Err(Error::db("cannot take the migration lock")(error)),
                }
            }
            Err(error) => return Err(Error::db("cannot take the migration lock")(error)),
        };
        if taken {
            break;
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(Error::LockTimeout {
                waited,
                holder: holder_of(conn, name).await,
            });
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(waited)) + jitter(pause)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
    // Causal reads from here on: the history as the previous holder left it.
    let connection = conn
        .script("SET @stowage_sync_wait = @@SESSION.wsrep_sync_wait, SESSION wsrep_sync_wait = 1".to_owned())
        .await
        .map_err(Error::db("cannot ask for causal reads on the cluster"));
    let id = match connection {
        Ok(()) => conn
            .fetch("SELECT CONNECTION_ID()".to_owned(), Vec::new(), &[Ty::I64])
            .await
            .ok()
            .and_then(|rows| rows.first()?.first()?.i64()),
        Err(error) => {
            let _ = conn.execute(release_sql(name), vec![holder]).await;
            return Err(error);
        }
    };
    let state = Arc::new(AtomicU8::new(LEASE_HELD));
    if let Some(renewer) = renewer {
        tokio::spawn(renew(renewer, name.clone(), token.clone(), id, Arc::clone(&state)));
    }
    let lease = Lease {
        release_sql: format!(
            "DELETE FROM {name} WHERE id = 1 AND holder = {}",
            super::MySql.text_literal(&token)
        ),
        state,
    };
    if let Ok(mut slot) = table.lease.lock() {
        *slot = Some(lease);
    }
    Ok(())
}

/// Remove the lease taken by [`take`], if any, and the session's causal reads.
pub(super) async fn release(conn: &mut Conn<'_>, table: &Table) -> Result<(), Error> {
    let lease = table.lease.lock().ok().and_then(|mut slot| slot.take());
    let Some(lease) = lease else {
        return Ok(());
    };
    let removed = conn
        .script(format!(
            "SET SESSION wsrep_sync_wait = @stowage_sync_wait; {}",
            lease.release_sql
        ))
        .await
        .map_err(Error::db("cannot release the migration lock"));
    if removed.is_ok() {
        lease.released();
    }
    removed
}

fn release_sql(name: &str) -> String {
    format!("DELETE FROM {name} WHERE id = 1 AND holder = ?")
}

/// Whether an error says another session has the row: a duplicate key, or
/// the cluster's certification refusing one of two writers (a deadlock).
fn is_contended(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| matches!(code.as_ref(), "1062" | "1213" | "23000" | "40001"))
}

async fn holder_of(conn: &mut Conn<'_>, name: &str) -> Option<String> {
    let rows = conn
        .fetch(
            format!(
                "SELECT CONCAT(holder, ' (lease until ', expires_at, ')') FROM {name} WHERE id = 1"
            ),
            Vec::new(),
            &[Ty::Text],
        )
        .await
        .ok()?;
    rows.first()?.first()?.text().map(str::to_owned)
}

/// Renew the lease every third of [`TTL`] until it is released. Abandoned
/// (the operation was cancelled), go on renewing while the migration
/// connection `id` is still at work on the server, then remove the lease.
async fn renew(mut conn: Conn<'static>, name: String, token: String, id: Option<i64>, state: Arc<AtomicU8>) {
    let holder = Value::Text(token);
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match state.load(Ordering::SeqCst) {
            LEASE_RELEASED => break,
            LEASE_ABANDONED => {
                let busy = match id {
                    Some(id) => conn
                        .fetch(
                            format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"),
                            Vec::new(),
                            &[Ty::I64],
                        )
                        .await
                        .ok()
                        .and_then(|rows| rows.first()?.first()?.i64())
                        .is_some_and(|n| n > 0),
                    None => false,
                };
                if !busy {
                    let _ = conn.execute(release_sql(&name), vec![holder.clone()]).await;
                    break;
                }
            }
            _ => {}
        }
        if renewed.elapsed() >= TTL / 3 {
            let sql = format!(
                "UPDATE {name} SET expires_at = NOW(6) + INTERVAL {} SECOND WHERE id = 1 AND holder = ?",
                TTL.as_secs()
            );
            match conn.execute(sql, vec![holder.clone()]).await {
                Ok(1) => renewed = Instant::now(),
                Ok(_) => {
                    tracing::error!("the migration lock's lease was lost: another process may be migrating");
                    break;
                }
                Err(error) => tracing::warn!(%error, "cannot renew the migration lock's lease; retrying"),
            }
        }
    }
    conn.close().await;
}
