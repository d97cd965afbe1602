//! [`Migrator`]: the embedded migrations of an application.

#[cfg(driver)]
use super::hooks::LockWait;
use super::hooks::{Hook, HookContext, HookFuture};
use super::placeholders::Placeholders;
use super::{Config, Head, Lock, Migration, MigrationSet, Policy, Source};
use crate::{Dialect, Event};
use std::borrow::Cow;
use std::sync::Arc;

/// The migrations embedded in the binary, one [`MigrationSet`] per dialect.
///
/// Build one with [`embed_migrations!`](crate::embed_migrations) in a `static`:
///
/// ```
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("migrations/sqlite");
///
/// assert!(MIGRATOR.len() > 0);
/// let head = MIGRATOR.head().unwrap();
/// assert_eq!(head.version, MIGRATOR.iter().last().unwrap().version());
/// ```
#[derive(Debug, Clone)]
pub struct Migrator {
    sets: Cow<'static, [MigrationSet]>,
    source: Source,
    config: Config,
    placeholders: Placeholders,
    hooks: Vec<Hook>,
    #[cfg(driver)]
    lock_wait: Option<LockWait>,
    /// The schema snapshots' texts (`schema.<dialect>.snapshot`).
    snapshots: Cow<'static, [Cow<'static, str>]>,
}

impl Migrator {
    /// Built by `embed_migrations!`.
    #[doc(hidden)]
    pub const fn embedded(
        sets: &'static [MigrationSet],
        source: Source,
        snapshots: &'static [Cow<'static, str>],
    ) -> Self {
        Migrator {
            sets: Cow::Borrowed(sets),
            source,
            config: Config::DEFAULT,
            placeholders: Placeholders::OFF,
            hooks: Vec::new(),
            #[cfg(driver)]
            lock_wait: None,
            snapshots: Cow::Borrowed(snapshots),
        }
    }

    #[cfg(any(feature = "include_dir", feature = "any"))]
    pub(crate) fn owned(sets: Vec<MigrationSet>) -> Self {
        Migrator {
            sets: Cow::Owned(sets),
            ..Migrator::embedded(&[], Source::embedded(None, &[]), &[])
        }
    }

    /// Every set: one for a plain folder, one per dialect subfolder otherwise.
    pub fn sets(&self) -> &[MigrationSet] {
        self.source.warn_if_stale();
        &self.sets
    }

    /// The set that serves `dialect`: its own subfolder's, or the set of a
    /// folder without dialect subfolders. `None` when the folder has dialect
    /// subfolders but none for `dialect`.
    pub fn set(&self, dialect: Dialect) -> Option<&MigrationSet> {
        self.sets()
            .iter()
            .find(|set| set.dialect() == Some(dialect))
            .or_else(|| self.sets.iter().find(|set| set.dialect().is_none()))
    }

    /// Every embedded migration: for a multi-dialect folder, the `postgres/`
    /// set, then `mysql/`, then `sqlite/`, each oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.sets().iter().flat_map(MigrationSet::iter)
    }

    /// How many migrations are embedded, over every dialect.
    pub fn len(&self) -> usize {
        self.sets().iter().map(MigrationSet::len).sum()
    }

    /// Whether no migration is embedded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest migration's version and chain. `None` when nothing is
    /// embedded, and for a multi-dialect folder, whose sets each have their
    /// own head: use [`set`](Self::set)`(dialect)?.head()` there.
    pub fn head(&self) -> Option<Head> {
        match self.sets() {
            [only] => only.head(),
            _ => None,
        }
    }

    /// The files that `embed_migrations!` did not see but that are now in
    /// the migrations folder, or that it saw and are gone: the binary is stale.
    ///
    /// Only debug builds keep the folder's path; release builds always
    /// return an empty list. Debug builds also print a warning about them the
    /// first time the migrator is used. Add
    /// [`stowage_build::rerun_if_changed`](crate::build::rerun_if_changed)
    /// to `build.rs` so that cargo rebuilds when a file is added.
    pub fn stale_files(&self) -> Vec<String> {
        self.source.stale_files()
    }

    /// The settings this migrator applies with.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Add a schema snapshot's text, as `Migrator::schema_snapshot` writes
    /// it, to those `embed_migrations!` found in the folder
    /// (`schema.<dialect>.snapshot`). `Migrator::drift` (feature `any`)
    /// uses a snapshot of the database's version,
    /// migrations and server instead of building the expected schema in a
    /// scratch database; a text that cannot be read makes `drift` fail.
    #[must_use]
    pub fn with_schema_snapshot(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        self.snapshots.to_mut().push(text.into());
        self
    }

    /// The schema snapshots' texts.
    #[cfg_attr(not(feature = "any"), allow(dead_code))]
    pub(crate) fn snapshots(&self) -> &[Cow<'static, str>] {
        &self.snapshots
    }

    /// Use another history table than `stowage_migrations`. The name is
    /// checked (ASCII letters, digits, `_`) when the migrator is used, and
    /// always quoted.
    ///
    /// ```
    /// static MIGRATOR: stowage::Migrator =
    ///     stowage::embed_migrations!().with_table("schema_history");
    /// assert_eq!(MIGRATOR.config().table(), "schema_history");
    /// ```
    #[must_use]
    pub const fn with_table(mut self, table: &'static str) -> Self {
        self.config.table = table;
        self
    }

    /// Keep the history table in this schema (PostgreSQL schema, MySQL
    /// database), created if missing. Without it, the connection's default.
    #[must_use]
    pub const fn with_schema(mut self, schema: &'static str) -> Self {
        self.config.schema = Some(schema);
        self
    }

    /// How long to wait for another process's migration lock (default 60 s).
    #[must_use]
    pub const fn with_lock_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.config.lock_timeout = timeout;
        self
    }

    /// How the migration lock is taken (default [`Lock::Server`], which
    /// also holds behind PgBouncer in transaction mode). Use
    /// [`Lock::Lease`] on a PostgreSQL-wire engine whose advisory locks are
    /// not known to hold (CockroachDB, …), or behind a pooler that gives the
    /// database a single server connection.
    ///
    /// ```
    /// static MIGRATOR: stowage::Migrator =
    ///     stowage::embed_migrations!().with_lock(stowage::Lock::Lease);
    /// ```
    #[must_use]
    pub const fn with_lock(mut self, lock: Lock) -> Self {
        self.config.lock = lock;
        self
    }

    /// What to do with an applied migration whose checksum differs from the
    /// binary's (default: [`Policy::Error`]).
    #[must_use]
    pub const fn with_modified(mut self, policy: Policy) -> Self {
        self.config.on_modified = policy;
        self
    }

    /// What to do with a version applied in the database that the binary
    /// does not have, as after deploying an older binary (default: [`Policy::Error`]).
    #[must_use]
    pub const fn with_missing(mut self, policy: Policy) -> Self {
        self.config.on_missing = policy;
        self
    }

    /// What to do with a pending migration older than the newest applied one,
    /// as after merging branches (default: [`Policy::Error`]). Allowed, it is
    /// applied.
    #[must_use]
    pub const fn with_out_of_order(mut self, policy: Policy) -> Self {
        self.config.on_out_of_order = policy;
        self
    }

    /// What `run` does on a database that holds tables or views of its own
    /// (stowage's left aside) and no history, when it has migrations to
    /// apply: by default it refuses and changes nothing, since such a
    /// database was built some other way, and its first migration would
    /// fail or add to it; `migrate baseline` (`Migrator::baseline`)
    /// records the version it is at. [`Policy::Allow`] applies the
    /// migrations beside those tables, with a warning (a database shared
    /// with another application, tables created by hand on purpose).
    #[must_use]
    pub const fn with_existing_schema(mut self, policy: Policy) -> Self {
        self.config.on_existing_schema = policy;
        self
    }

    /// Whether `run`, finding no history table of its own but the one of
    /// sqlx (`_sqlx_migrations`), diesel (`__diesel_schema_migrations`) or
    /// refinery (`refinery_schema_history`), takes it over before applying
    /// what is pending (default `true`); see `Migrator::adopt`. Turn it off
    /// when another application's history shares the database.
    #[must_use]
    pub const fn with_take_over(mut self, take_over: bool) -> Self {
        self.config.take_over = take_over;
        self
    }

    /// Replace placeholders, `${name}`, in migrations and callback files
    /// before they run, with these values (and those of
    /// [`placeholder`](Self::placeholder)). An environment variable
    /// `STOWAGE_PLACEHOLDER_<NAME>` (the name in capitals) overrides a value
    /// given in code, so that a deployment can change it without a rebuild.
    ///
    /// A placeholder is `${` + ASCII letters, digits and `_` + `}`; write
    /// `$${` for a literal `${`. Checksums cover the SQL as written, so a
    /// changed value does not make an applied migration "modified". A
    /// placeholder without a value is an error before anything runs.
    /// Without this setting or `placeholder`, SQL runs exactly as written,
    /// `${` included.
    ///
    /// ```
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!()
    ///     .with_placeholders(&[("app_role", "app")]);
    /// ```
    #[must_use]
    pub const fn with_placeholders(
        mut self,
        values: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.placeholders.on = true;
        self.placeholders.fixed = values;
        self
    }

    /// Give placeholder `name` a value known only at run time (and turn
    /// placeholders on): see [`with_placeholders`](Self::with_placeholders).
    ///
    /// ```
    /// # static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    /// let role = std::env::var("APP_ROLE").unwrap_or_else(|_| "app".to_owned());
    /// let migrator = MIGRATOR.clone().placeholder("app_role", role);
    /// ```
    #[must_use]
    pub fn placeholder(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.placeholders.on = true;
        self.placeholders.added.push((name.into(), value.into()));
        self
    }

    /// Run `hook` at `event`, after the callback files of that event, on
    /// the migration connection: for what SQL cannot do. Like callback
    /// files, hooks run only when a run has work to do. An error from the
    /// hook stops the run with [`Error::CallbackFailed`](crate::Error::CallbackFailed).
    ///
    /// ```
    /// # static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
    /// use stowage::Event;
    ///
    /// let migrator = MIGRATOR.clone().on(Event::AfterEachMigrate, |mut ctx| {
    ///     Box::pin(async move {
    ///         if let Some(m) = ctx.migration() {
    ///             println!("applied {}", m.version());
    ///         }
    ///         ctx.execute("SELECT 1").await?;
    ///         Ok(())
    ///     })
    /// });
    /// ```
    #[must_use]
    pub fn on<F>(mut self, event: Event, hook: F) -> Self
    where
        F: for<'c> Fn(HookContext<'c>) -> HookFuture<'c> + Send + Sync + 'static,
    {
        self.hooks.push(Hook {
            event,
            run: Arc::new(hook),
        });
        self
    }

    pub(crate) fn placeholders(&self) -> &Placeholders {
        &self.placeholders
    }

    /// The folder it was embedded from, in a debug build.
    #[cfg(any(feature = "cli", feature = "testing"))]
    pub(crate) fn source_dir(&self) -> Option<&'static str> {
        self.source.dir()
    }

    #[cfg(feature = "cli")]
    /// The migrator with `told` called while it waits for the lock.
    pub(crate) fn on_lock_wait(
        mut self,
        told: impl Fn(Option<&str>, std::time::Duration) + Send + Sync + 'static,
    ) -> Self {
        self.lock_wait = Some(LockWait(Arc::new(told)));
        self
    }

    #[cfg(driver)]
    /// The history table of `dialect` as this migrator's configuration
    /// names it, with the dialect's implementation the engine works through.
    pub(crate) fn table(
        &self,
        dialect: Dialect,
    ) -> Result<crate::engine::history::Table, crate::Error> {
        crate::engine::history::Table::new(self.config(), crate::dialect::of(dialect)?)
    }

    #[cfg(driver)]
    /// Who is told while the lock is waited for.
    pub(crate) fn lock_wait(&self) -> Option<LockWait> {
        self.lock_wait.clone()
    }

    pub(crate) fn hooks(&self, event: Event) -> impl Iterator<Item = &Hook> {
        self.hooks.iter().filter(move |hook| hook.event == event)
    }
}
