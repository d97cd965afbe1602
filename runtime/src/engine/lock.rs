//! The migration lock: one process at a time migrates a database.
//!
//! Each dialect says what its lock is ([`SqlDialect::lock`]): PostgreSQL and
//! MySQL a session lock polled here by [`SessionLock::poll`], SQLite the run's own
//! `BEGIN IMMEDIATE` transaction. This module holds what is common: taking it
//! on a connection that is closed when that fails, and releasing it on every
//! path.
//!
//! [`SqlDialect::lock`]: crate::dialect::SqlDialect::lock

use super::connection::{Conn, Ty, Value};
use super::history::Table;
use crate::Error;
use std::time::{Duration, Instant};

/// A connection holding the migration lock.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    /// The connection the lock is held on.
    pub(crate) conn: Conn<'a>,
    /// What restores the session's settings after the lock is released.
    restore: Option<&'static str>,
    /// Close the connection after releasing the lock instead of returning it
    /// to its pool: migration SQL ran on it and may have changed the session.
    pub(crate) close_after: bool,
}

/// Take the migration lock on the connection; on failure it is closed, and
/// a pooled one is closed too when it is dropped, so that a cancelled
/// operation leaves no lock behind.
pub(crate) async fn lock<'a>(
    mut conn: Conn<'a>,
    table: &Table,
    timeout: Duration,
) -> Result<Locked<'a>, Error> {
    // A read-only server is said at once, not found by a lock or a
    // statement that fails.
    match table.sql.read_only(&mut conn).await {
        Ok(None) => {}
        Ok(Some(reason)) => return Err(Error::ReadOnly { reason }),
        Err(error) => return Err(error),
    }
    // From here on, a dropped future must not hand a locked connection back.
    conn.close_on_drop();
    let waiting = Instant::now();
    match table.sql.lock(&mut conn, table, timeout).await {
        Ok(restore) => {
            tracing::debug!(waited = ?waiting.elapsed(), "migration lock taken");
            Ok(Locked {
                conn,
                restore,
                close_after: false,
            })
        }
        Err(error) => {
            conn.close().await;
            Err(error)
        }
    }
}

/// Release the lock after the work that gave `result`, on every path, and
/// restore the session; when that fails, the connection is closed, which
/// releases the lock too.
pub(crate) async fn unlock<T>(
    locked: Locked<'_>,
    table: &Table,
    result: Result<T, Error>,
) -> Result<T, Error> {
    let Locked {
        mut conn,
        restore,
        close_after,
    } = locked;
    // Where the lock is the run's transaction, keep the migrations that
    // succeeded (a failed one was rolled back to its savepoint already).
    let keep = matches!(
        result,
        Ok(_)
            | Err(Error::MigrationFailed { .. }
                | Error::UndoFailed { .. }
                | Error::ForeignKeyViolation { .. })
    );
    let mut released = table.sql.unlock(&mut conn, table, keep).await;
    if let Some(sql) = restore {
        // Also when releasing failed: a lent connection is not closed below.
        let restored = conn
            .script(sql.to_owned())
            .await
            .map_err(Error::db("cannot restore the session after migrating"));
        released = released.and(restored);
    }
    match released {
        Ok(()) => {
            if close_after {
                conn.close().await;
            }
            result
        }
        Err(release_error) => {
            conn.close().await;
            result.and(Err(release_error))
        }
    }
}

/// The statements of a session lock keyed by the history table's
/// [`key`](Table::key), each taking that key as its one parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLock {
    /// What opens the transaction that holds the lock, before each
    /// `try_lock`, where the lock is a transaction's.
    pub(crate) begin: Option<&'static str>,
    /// Try to take the lock without waiting: 1 when taken, 0 when held
    /// elsewhere, `NULL` when refused.
    pub(crate) try_lock: &'static str,
    /// Release it: 1 when it was held.
    pub(crate) unlock: &'static str,
    /// Who holds it, as one line of text, or no row.
    pub(crate) holder: &'static str,
    /// What it means when `try_lock` gives `NULL`.
    pub(crate) refused: &'static str,
    /// What ends the transaction of `begin` after a `try_lock` that found
    /// the lock held: the waiting session holds nothing between polls.
    pub(crate) missed: Option<&'static str>,
}

impl SessionLock {
    /// Take the lock, polling with backoff up to `timeout`; say who holds it
    /// while waiting.
    pub(crate) async fn poll(
        &self,
        conn: &mut Conn<'_>,
        table: &Table,
        timeout: Duration,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        let mut next_report = Duration::ZERO;
        loop {
            if let Some(sql) = self.begin {
                conn.script(sql.to_owned())
                    .await
                    .map_err(Error::db("cannot take the migration lock"))?;
            }
            let taken = conn
                .fetch_one(
                    self.try_lock.to_owned(),
                    vec![Value::Text(table.key.clone())],
                    Ty::OptI64,
                )
                .await
                .map_err(Error::db("cannot take the migration lock"))?;
            match taken.and_then(|cell| cell.i64()) {
                Some(1) => {
                    if next_report > Duration::ZERO {
                        tracing::info!(waited = ?started.elapsed(), "took the migration lock");
                    }
                    return Ok(());
                }
                Some(0) => {
                    if let Some(sql) = self.missed {
                        conn.script(sql.to_owned())
                            .await
                            .map_err(Error::db("cannot take the migration lock"))?;
                    }
                }
                _ => return Err(Error::InvalidConfig(self.refused.to_owned())),
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    waited,
                    holder: self.holder(conn, table).await,
                });
            }
            if waited >= next_report {
                let holder = self.holder(conn, table).await;
                table.say_waiting(holder.as_deref(), waited);
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

    /// Release the lock.
    pub(crate) async fn release(&self, conn: &mut Conn<'_>, table: &Table) -> Result<(), Error> {
        let released = conn
            .fetch_one(
                self.unlock.to_owned(),
                vec![Value::Text(table.key.clone())],
                Ty::OptI64,
            )
            .await
            .map_err(Error::db("cannot release the migration lock"))?;
        if released.and_then(|cell| cell.i64()) != Some(1) {
            tracing::warn!("the migration lock was not held when releasing it");
        }
        Ok(())
    }

    /// Who holds the lock, as the server tells.
    async fn holder(&self, conn: &mut Conn<'_>, table: &Table) -> Option<String> {
        let key = vec![Value::Text(table.key.clone())];
        let cell = conn
            .fetch_one(self.holder.to_owned(), key, Ty::OptText)
            .await
            .ok()??;
        cell.text().map(str::to_owned)
    }
}

/// A lease the lock holds (see `engine::lease`): a row that
/// says who holds the lock until when, renewed by a task of its own.
/// Dropped without [`Lease::released`] (the operation was cancelled), the
/// task goes on renewing it until the migration connection's statement has
/// ended on the server, then removes it.
#[derive(Debug)]
pub(crate) struct Lease {
    /// The statement that removes the lease row.
    pub(crate) release_sql: String,
    /// [`LEASE_HELD`], [`LEASE_RELEASED`] or [`LEASE_ABANDONED`], shared with
    /// the renewing task.
    pub(crate) state: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// The lease is held.
pub(crate) const LEASE_HELD: u8 = 0;
/// The lease was released: its renewing task ends.
pub(crate) const LEASE_RELEASED: u8 = 1;
/// The lease's holder was dropped without releasing it.
pub(crate) const LEASE_ABANDONED: u8 = 2;

impl Lease {
    /// The lease was released on the migration connection.
    pub(crate) fn released(self) {
        self.state
            .store(LEASE_RELEASED, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.state.compare_exchange(
            LEASE_HELD,
            LEASE_ABANDONED,
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

/// Up to a quarter of `pause`, so that waiting processes do not poll in step.
pub(crate) fn jitter(pause: Duration) -> Duration {
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
