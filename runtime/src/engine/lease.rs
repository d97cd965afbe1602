//! The lock as a lease row in `<table>_lock`, one per history table: for a
//! Galera cluster (`wsrep_on`), where `GET_LOCK` holds on one node only, and
//! for `Lock::Lease` (engines whose locks are not known to hold).
//!
//! Taking it is an `INSERT` of the row (or, when the row's lease has
//! expired, an `UPDATE` that takes it over). Two sessions writing it at once
//! cannot both commit: a duplicate key, a serialization failure, or on a
//! cluster the certification of one of two writers (a deadlock error). The
//! holder renews the lease on a connection of its own while it migrates; a
//! holder that crashes stops renewing, and the lease expires after [`TTL`].
//! A holder dropped without releasing it (a cancelled run) goes on renewing
//! it while the migration connection's statement still runs on the server.

use crate::Error;
use crate::engine::connection::{Conn, Ty};
use crate::error::{has_code, is_rolled_back};
use crate::engine::history::Table;
use crate::engine::lock::{
    Due, LEASE_ABANDONED, LEASE_HELD, LEASE_RELEASED, Lease, Request, Wait, jitter,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How long a lease lasts without renewal.
const TTL: Duration = Duration::from_secs(30);
/// How long it lasts when nothing can renew it while a migration runs (a
/// lent connection, with no pool to open another from).
const TTL_UNRENEWED: Duration = Duration::from_secs(600);

/// What a lease needs of a dialect's SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseSql {
    /// The type of the expiry column.
    pub(crate) timestamp: &'static str,
    /// What ends the `CREATE TABLE` (MySQL's engine).
    pub(crate) table_options: &'static str,
    /// The current time, as the expiry column holds it.
    pub(crate) now: &'static str,
    /// `seconds` as an interval to add to [`now`](Self::now).
    pub(crate) interval: fn(u64) -> String,
    /// The session's id on the server, one `BIGINT`.
    pub(crate) session_id: &'static str,
    /// How many sessions with this id are still at work (one `BIGINT`).
    pub(crate) session_busy: fn(i64) -> String,
    /// The error codes that say another session has the row.
    pub(crate) contended: &'static [&'static str],
    /// The error codes that say another session created the lock's table
    /// at the same moment.
    pub(crate) created_meanwhile: &'static [&'static str],
}

/// Take the lease of `table`'s lock, waiting as `request` says, and keep it
/// renewed until [`release`] is given it.
pub(crate) async fn take(
    conn: &mut Conn<'_>,
    table: &Table,
    sql: LeaseSql,
    request: &Request,
) -> Result<Lease, Error> {
    let lock_table = table.sibling("lock", "the table of the migration lock")?;
    let name = &lock_table.name;
    let created = conn
        .script(format!(
            "CREATE TABLE IF NOT EXISTS {name} (id INT PRIMARY KEY, holder VARCHAR(255) NOT \
             NULL, expires_at {} NOT NULL){}",
            sql.timestamp, sql.table_options
        ))
        .await;
    match created {
        // Made at the same moment by another process: there it is.
        Err(error) if has_code(&error, sql.created_meanwhile) => {}
        other => other.map_err(Error::db("cannot create the table of the migration lock"))?,
    }
    let renewer = conn.open_another().await.transpose().map_err(Error::db(
        "cannot open the connection that renews the migration lock",
    ))?;
    let ttl = match renewer {
        Some(_) => TTL,
        None => TTL_UNRENEWED,
    };
    let token: String = format!(
        "{} at {:?}",
        crate::engine::history::applied_by(),
        std::time::SystemTime::now()
    )
    .chars()
    .take(255)
    .collect();
    let holder = table.sql.text_literal(&token);
    let (now, until) = (sql.now, (sql.interval)(ttl.as_secs()));
    let mut wait = Wait::new(request);
    loop {
        let inserted = conn
            .execute(
                format!(
                    "INSERT INTO {name} (id, holder, expires_at) VALUES (1, {holder}, {now} + {until})"
                ),
            )
            .await;
        let taken = match inserted {
            Ok(_) => true,
            Err(error) if is_contended(&error, sql) => {
                // Held: take it over only if its lease has run out.
                let expired = conn
                    .execute(
                        format!(
                            "UPDATE {name} SET holder = {holder}, expires_at = {now} + {until} \
                             WHERE id = 1 AND expires_at < {now}"
                        ),
                    )
                    .await;
                match expired {
                    Ok(1) => {
                        tracing::warn!(
                            "took over the migration lock of a holder that stopped renewing it"
                        );
                        true
                    }
                    Ok(_) => false,
                    Err(error) if is_contended(&error, sql) => false,
                    Err(error) => return Err(Error::db("cannot take the migration lock")(error)),
                }
            }
            Err(error) => return Err(Error::db("cannot take the migration lock")(error)),
        };
        if taken {
            break;
        }
        match wait.due() {
            Due::GiveUp(waited) => {
                let holder = holder_of(conn, name).await;
                return Err(Error::LockTimeout { waited, holder });
            }
            Due::Report(waited) => wait.say(holder_of(conn, name).await.as_deref(), waited),
            Due::Nothing => {}
        }
        wait.pause().await;
    }
    let id = conn
        .fetch_one(sql.session_id.to_owned(), Ty::I64)
        .await
        .ok()
        .flatten()
        .and_then(|cell| cell.i64());
    let state = Arc::new(AtomicU8::new(LEASE_HELD));
    let delete = format!("DELETE FROM {name} WHERE id = 1 AND holder = {holder}");
    if let Some(renewer) = renewer {
        let renewing = Renewing {
            name: name.clone(),
            holder,
            delete: delete.clone(),
            id,
            sql,
            state: Arc::clone(&state),
        };
        tokio::spawn(renewing.run(renewer));
    }
    Ok(Lease {
        release_sql: delete,
        state,
    })
}

/// Remove the lease taken by [`take`], if there is one.
pub(crate) async fn release(conn: &mut Conn<'_>, lease: Option<Lease>) -> Result<(), Error> {
    let Some(lease) = lease else {
        return Ok(());
    };
    // A cluster may refuse the delete's certification against a concurrent
    // writer of the row (a deadlock error): nothing was removed, and the
    // delete, of this holder's row only, can run again.
    let mut pause = Duration::from_millis(20);
    let mut removed = conn.script(lease.release_sql.clone()).await;
    for _ in 0..8 {
        match &removed {
            Err(error) if is_rolled_back(error) => {
                tokio::time::sleep(pause + jitter(pause)).await;
                pause *= 2;
                removed = conn.script(lease.release_sql.clone()).await;
            }
            _ => break,
        }
    }
    let removed = removed.map_err(Error::db("cannot release the migration lock"));
    if removed.is_ok() {
        lease.released();
    }
    removed
}

/// Whether an error says another session has the row: a duplicate key, a
/// serialization failure, or a cluster's certification refusing one of two
/// writers (a deadlock).
fn is_contended(error: &sqlx::Error, sql: LeaseSql) -> bool {
    has_code(error, sql.contended)
}

async fn holder_of(conn: &mut Conn<'_>, name: &str) -> Option<String> {
    let sql =
        format!("SELECT CONCAT(holder, ' (lease until ', expires_at, ')') FROM {name} WHERE id = 1");
    let cell = conn.fetch_one(sql, Ty::Text).await.ok()??;
    cell.text().map(str::to_owned)
}

/// The task that renews a lease on a connection of its own.
struct Renewing {
    name: String,
    /// The holder's token, as a literal.
    holder: String,
    delete: String,
    /// The migration connection's session on the server.
    id: Option<i64>,
    sql: LeaseSql,
    state: Arc<AtomicU8>,
}

impl Renewing {
    /// Renew the lease every third of [`TTL`] until it is released.
    /// Abandoned (the operation was cancelled), go on renewing it while the
    /// migration connection is still at work on the server, then remove it.
    async fn run(self, mut conn: Conn<'static>) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.state.load(Ordering::SeqCst) {
                LEASE_RELEASED => break,
                LEASE_ABANDONED if !self.migrating(&mut conn).await => {
                    let _ = conn.script(self.delete.clone()).await;
                    break;
                }
                _ => {}
            }
            if renewed.elapsed() >= TTL / 3 {
                let sql = format!(
                    "UPDATE {} SET expires_at = {} + {} WHERE id = 1 AND holder = {}",
                    self.name,
                    self.sql.now,
                    (self.sql.interval)(TTL.as_secs()),
                    self.holder
                );
                match conn.execute(sql).await {
                    Ok(1) => renewed = Instant::now(),
                    Ok(_) => {
                        tracing::error!(
                            "the migration lock's lease was lost: another process may be migrating"
                        );
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot renew the migration lock's lease; retrying");
                    }
                }
            }
        }
        conn.close().await;
    }

    /// Whether the migration connection still runs a statement on the server.
    async fn migrating(&self, conn: &mut Conn<'static>) -> bool {
        let Some(id) = self.id else {
            return false;
        };
        conn.fetch_one((self.sql.session_busy)(id), Ty::I64)
            .await
            .ok()
            .flatten()
            .and_then(|cell| cell.i64())
            .is_some_and(|n| n > 0)
    }
}
