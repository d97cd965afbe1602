//! The migration lock: one process at a time migrates a database.
//!
//! Each dialect says what its lock is ([`SqlDialect::lock`]): PostgreSQL and
//! MySQL a session lock polled here by [`SessionLock::poll`], SQLite the run's own
//! `BEGIN IMMEDIATE` transaction. This module holds what is common: how the
//! lock is asked for ([`Request`]), taking it on a connection that is closed
//! when that fails, releasing it on every path, and the one [`Wait`] (backoff,
//! who holds it, timeout) of everything that waits for another process. What a lock holds while it is held (a connection of its own, a
//! lease, the session's settings to restore) is one value, [`Hold`], owned
//! by [`Locked`] and consumed by the release.
//!
//! [`SqlDialect::lock`]: crate::dialect::SqlDialect::lock

use super::connection::{Conn, Ty};
use super::history::Table;
use super::sql_dialect::At;
use crate::embedded::hooks::LockWait;
use crate::{Error, Migrator};
use std::time::{Duration, Instant};

/// How the lock is asked for: which kind, how long to wait for it, and who
/// hears of the wait (the CLI).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The kind of lock asked for.
    pub(crate) how: crate::Lock,
    /// How long to wait for it.
    pub(crate) timeout: Duration,
    /// Told while it is waited for.
    told: Option<LockWait>,
}

impl Request {
    /// The same request, waiting `timeout` at most (what is left of a wait).
    pub(crate) fn within(&self, timeout: Duration) -> Request {
        Request {
            timeout,
            ..self.clone()
        }
    }
}

/// One wait for what another process holds (the lock, its lease, a killed
/// run's statement): between tries a pause from 10 ms doubling to 500 ms
/// (with jitter, so that waiting processes do not poll in step), who holds
/// it said at once and every 5 s, and the request's timeout.
pub(crate) struct Wait<'r> {
    request: &'r Request,
    started: Instant,
    pause: Duration,
    next_report: Duration,
}

/// What a [`Wait`] has come to after a try that found the thing held.
pub(crate) enum Due {
    /// The timeout has passed, after waiting this long.
    GiveUp(Duration),
    /// Say who holds it ([`Wait::say`]), waited this long.
    Report(Duration),
    /// Pause and try again.
    Nothing,
}

impl<'r> Wait<'r> {
    pub(crate) fn new(request: &'r Request) -> Wait<'r> {
        Wait {
            request,
            started: Instant::now(),
            pause: Duration::from_millis(10),
            next_report: Duration::ZERO,
        }
    }

    /// What is due after a try that found the thing held.
    pub(crate) fn due(&mut self) -> Due {
        let waited = self.started.elapsed();
        if waited >= self.request.timeout {
            Due::GiveUp(waited)
        } else if waited >= self.next_report {
            self.next_report = waited + Duration::from_secs(5);
            Due::Report(waited)
        } else {
            Due::Nothing
        }
    }

    /// Say who holds it: to whoever asked (the CLI), and in the log.
    pub(crate) fn say(&self, holder: Option<&str>, waited: Duration) {
        if let Some(told) = &self.request.told {
            (told.0)(holder, waited);
        }
        tracing::warn!(
            holder = holder.unwrap_or("unknown"),
            waited = ?waited,
            "waiting for the migration lock held by {}",
            holder.unwrap_or("another session")
        );
    }

    /// Whether the wait was said: its end is said too.
    pub(crate) fn was_said(&self) -> bool {
        self.next_report > Duration::ZERO
    }

    /// What is left of the timeout.
    pub(crate) fn left(&self) -> Duration {
        self.request.timeout.saturating_sub(self.started.elapsed())
    }

    /// Pause before the next try.
    pub(crate) async fn pause(&mut self) {
        tokio::time::sleep(self.pause.min(self.left()) + jitter(self.pause)).await;
        self.pause = (self.pause * 2).min(Duration::from_millis(500));
    }
}

/// A connection holding the migration lock.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    /// The connection the lock is held on.
    pub(crate) conn: Conn<'a>,
    /// What the lock holds, until [`unlock`] hands it back to the dialect.
    pub(crate) hold: Hold,
    /// Close the connection after releasing the lock instead of returning it
    /// to its pool: migration SQL ran on it and may have changed the session.
    pub(crate) close_after: bool,
}

/// Everything a dialect's lock holds, from [`SqlDialect::lock`] to
/// [`SqlDialect::unlock`], which consumes it: the history's [`Table`] keeps
/// names only. Dropped unreleased (the operation was cancelled), its
/// connection is closed and its lease abandoned (see [`Lease`]).
///
/// [`SqlDialect::lock`]: crate::dialect::SqlDialect::lock
/// [`SqlDialect::unlock`]: crate::dialect::SqlDialect::unlock
#[derive(Debug, Default)]
pub(crate) struct Hold {
    /// The statement that restores the session once the lock is released.
    pub(crate) restore: Option<&'static str>,
    /// The connection of its own that holds the lock (PostgreSQL's
    /// transaction lock, see `dialect::postgres`).
    pub(crate) conn: Option<Conn<'static>>,
    /// The lease row the lock holds (`engine::lease`).
    pub(crate) lease: Option<Lease>,
    /// What the migrations run under the lock read of it.
    pub(crate) settings: Settings,
}

/// The session as the lock set it up, which applying and reverting read:
/// the part of a [`Hold`] they are given (the rest is not theirs to touch,
/// and a connection cannot be shared between threads).
#[derive(Debug, Default)]
pub(crate) struct Settings {
    /// Whether SQLite's `foreign_key_check` runs after each migration: see
    /// `dialect::sqlite::ForeignKeys`.
    pub(crate) foreign_keys: std::sync::atomic::AtomicU8,
}

/// Take the migration lock on the connection, as `migrator`'s
/// configuration asks; on failure the connection is closed, and a pooled one
/// is closed too when it is dropped, so that a cancelled operation leaves no
/// lock behind.
pub(crate) async fn lock<'a>(
    mut conn: Conn<'a>,
    table: &Table,
    migrator: &Migrator,
) -> Result<Locked<'a>, Error> {
    let request = Request {
        how: migrator.config().lock,
        timeout: migrator.config().lock_timeout,
        told: migrator.lock_wait(),
    };
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
    let at = At {
        conn: &mut conn,
        table,
    };
    match table.sql.lock(at, &request).await {
        Ok(hold) => {
            tracing::debug!(waited = ?waiting.elapsed(), "migration lock taken");
            Ok(Locked {
                conn,
                hold,
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
        mut hold,
        close_after,
    } = locked;
    let restore = hold.restore.take();
    // Where the lock is the run's transaction, keep the migrations that
    // succeeded (a failed one was rolled back to its savepoint already).
    let keep = matches!(
        result,
        Ok(_)
            | Err(Error::MigrationFailed { .. }
                | Error::UndoFailed { .. }
                | Error::ForeignKeyViolation { .. })
    );
    let at = At {
        conn: &mut conn,
        table,
    };
    let mut released = table.sql.unlock(at, hold, keep).await;
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
    /// elsewhere, `NULL` when refused. In it and in the next two, `{key}`
    /// stands for the lock's key (the history table's `schema.table`).
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
    /// Take the lock, waiting as `request` says; say who holds it while
    /// waiting.
    pub(crate) async fn poll(
        &self,
        conn: &mut Conn<'_>,
        table: &Table,
        request: &Request,
    ) -> Result<(), Error> {
        let mut wait = Wait::new(request);
        loop {
            if let Some(sql) = self.begin {
                conn.script(sql.to_owned())
                    .await
                    .map_err(Error::db("cannot take the migration lock"))?;
            }
            let taken = conn
                .fetch_one(keyed(self.try_lock, table), Ty::OptI64)
                .await
                .map_err(Error::db("cannot take the migration lock"))?;
            match taken.and_then(|cell| cell.i64()) {
                Some(1) => {
                    if wait.was_said() {
                        tracing::info!("took the migration lock");
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
            match wait.due() {
                Due::GiveUp(waited) => {
                    let holder = self.holder(conn, table).await;
                    return Err(Error::LockTimeout { waited, holder });
                }
                Due::Report(waited) => wait.say(self.holder(conn, table).await.as_deref(), waited),
                Due::Nothing => {}
            }
            wait.pause().await;
        }
    }

    /// Release the lock.
    pub(crate) async fn release(&self, conn: &mut Conn<'_>, table: &Table) -> Result<(), Error> {
        let released = conn
            .fetch_one(keyed(self.unlock, table), Ty::OptI64)
            .await
            .map_err(Error::db("cannot release the migration lock"))?;
        if released.and_then(|cell| cell.i64()) != Some(1) {
            tracing::warn!("the migration lock was not held when releasing it");
        }
        Ok(())
    }

    /// Who holds the lock, as the server tells.
    async fn holder(&self, conn: &mut Conn<'_>, table: &Table) -> Option<String> {
        let cell = conn
            .fetch_one(keyed(self.holder, table), Ty::OptText)
            .await
            .ok()??;
        cell.text().map(str::to_owned)
    }
}

/// `sql` with `{key}` written as the literal of `table`'s lock key.
fn keyed(sql: &str, table: &Table) -> String {
    sql.replace("{key}", &table.sql.text_literal(&table.key))
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
