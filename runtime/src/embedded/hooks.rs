//! Rust hooks: closures run at the same [`Event`]s as callback files, for
//! what SQL cannot do (`Migrator::on`).

use crate::{Dialect, Event, Migration};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The error a hook returns: any error.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The future a hook returns: write the hook's body as
/// `Box::pin(async move { … })`.
pub type HookFuture<'c> = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'c>>;

/// A hook's function.
type HookFn = dyn for<'c> Fn(HookContext<'c>) -> HookFuture<'c> + Send + Sync;

/// A hook and the event it runs at.
#[derive(Clone)]
pub(crate) struct Hook {
    pub(crate) event: Event,
    pub(crate) run: Arc<HookFn>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hook({})", self.event)
    }
}

/// Told while an operation waits for the migration lock: who holds it, when
/// known, and how long it has been waited for. For the CLI's lines.
#[cfg(driver)]
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // only the CLI tells
#[derive(Clone)]
pub(crate) struct LockWait(pub(crate) Arc<LockWaitFn>);

/// [`LockWait`]'s function: the holder, when known, and the time waited.
#[cfg(driver)]
type LockWaitFn = dyn Fn(Option<&str>, std::time::Duration) + Send + Sync;

#[cfg(driver)]
impl std::fmt::Debug for LockWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockWait")
    }
}

/// What runs the SQL of a hook: the migration connection.
pub(crate) trait Execute: Send {
    /// Run `sql`, which may hold several statements.
    fn execute_script(
        &mut self,
        sql: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + '_>>;
}

/// What a hook is given: the event, the migration it is about, and the
/// migration connection to run SQL on.
pub struct HookContext<'c> {
    pub(crate) event: Event,
    pub(crate) migration: Option<&'c Migration>,
    pub(crate) took: Option<std::time::Duration>,
    pub(crate) dialect: Dialect,
    pub(crate) conn: &'c mut dyn Execute,
}

impl HookContext<'_> {
    /// The event the hook runs at.
    pub fn event(&self) -> Event {
        self.event
    }

    /// For [`Event::BeforeEachMigrate`] and [`Event::AfterEachMigrate`], the
    /// migration about to be applied or just applied; `None` otherwise.
    pub fn migration(&self) -> Option<&Migration> {
        self.migration
    }

    /// For [`Event::AfterEachMigrate`], how long the migration took: its
    /// SQL, its history row and its commit, as the [`Report`](crate::Report)
    /// gives it; `None` otherwise.
    pub fn took(&self) -> Option<std::time::Duration> {
        self.took
    }

    /// The dialect of the database being migrated.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Run `sql` (one or more statements) on the migration connection, in
    /// the session the migrations run in.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        self.conn.execute_script(sql.to_owned()).await
    }
}

impl std::fmt::Debug for HookContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookContext")
            .field("event", &self.event)
            .field("migration", &self.migration.map(Migration::version))
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}
