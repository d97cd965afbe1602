//! SQL migrations compiled into the binary and applied when it starts.
//!
//! [`embed_migrations!`] reads a migrations folder when the crate compiles,
//! validates and checksums every file and embeds it as a [`Migrator`]; the
//! binary needs no migration files at run time.
//!
//! # Example
//!
//! ```no_run
//! static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = sqlx::PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
//! let report = MIGRATOR.run(&pool).await?; // one query when nothing is pending
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! The embedded model can be inspected too:
//!
//! ```
//! // `./migrations`, beside Cargo.toml: a folder per database here.
//! static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
//!
//! let postgres = MIGRATOR.set(stowage::Dialect::Postgres).unwrap();
//! for migration in postgres {
//!     println!("{} {} ({} bytes)", migration.version(), migration.description(), migration.up_sql().len());
//! }
//! ```
//!
//! # Features
//!
//! Items that a feature adds are shown in these docs with the feature that
//! brings them.
//!
//! | feature | what it adds |
//! |---|---|
//! | `postgres` | `Migrator::run` on `PgPool` / `&mut PgConnection` |
//! | `mysql` | `Migrator::run` on `MySqlPool` / `&mut MySqlConnection` (MySQL and MariaDB) |
//! | `sqlite` | `Migrator::run` on `SqlitePool` / `&mut SqliteConnection` |
//! | `any` | `Migrator::run` on `AnyPool` / `&mut AnyConnection`, the dialect taken from the URL |
//! | `serde` | `Serialize` for `Status` |
//! | `cli` | `cli`: `app migrate up/down/status/stamp/verify/plan/repair` in the application's binary |
//! | `testing` | `testing::TestDb` and `test`: a migrated database per test, from a template (implies `postgres`, `mysql`, `sqlite`, `any`) |
//! | `include_dir` | `Migrator::from_dir`, for folders embedded with the include_dir crate |
//!
//! # Recompilation
//!
//! Editing an embedded file rebuilds the crate: the macro embeds each file with
//! `include_str!`. Adding a file does not, unless `build.rs` calls
//! [`build::rerun_if_changed`]; debug builds print a warning when they find
//! files on disk that the binary does not hold ([`Migrator::stale_files`]).
#![deny(missing_docs)]
// Without a driver, the pieces that apply migrations have no caller.
#![cfg_attr(not(driver), allow(dead_code))]
#![cfg_attr(docsrs, feature(doc_cfg))]
// `Error` carries what a person needs to fix a migration (file, line,
// excerpt, the server's words); it travels once, on the failure path of a
// start-up, where its size costs nothing worth boxing it for.
#![allow(clippy::result_large_err)]

/// Items that only make sense with at least one database driver feature.
macro_rules! with_driver {
    ($($item:item)*) => {$(
        #[cfg(driver)]
        $item
    )*};
}

pub mod build;
#[cfg(feature = "cli")]
pub mod cli;
mod embedded;
mod error;
mod report;
#[cfg(feature = "cli")]
mod scaffold;
#[cfg(feature = "testing")]
pub mod testing;
with_driver! {
    mod connect;
    mod dialect;
    mod engine;
    mod operations;
    mod schema;
}

pub use embedded::{
    CallbackFile, Config, Head, HookContext, HookError, HookFuture, Lock, Migration, MigrationSet,
    Migrator, Policy,
};
pub use error::Error;
pub use report::{Applied, Report};
pub use stowage_layout::{Dialect, Event};
with_driver! {
    pub use connect::{Backend, ConnectOptions, connect, connect_with, database_url};
    pub use engine::connection::Database;
    pub use operations::{
        MigrationState, Plan, PlanStep, RepairAction, Status, StatusEntry, Target, Tool,
    };
    pub use schema::{Change, Difference, Generated, ObjectKind, Schema, SchemaObject};
    #[cfg(feature = "any")]
    pub use schema::{Drift, Renames};
}

/// Embed a migrations folder into the binary as a [`Migrator`].
///
/// `embed_migrations!()` reads `migrations/` beside the crate's `Cargo.toml`;
/// `embed_migrations!("db/migrations")` reads another folder, relative to the
/// same place. The folder is read, validated and checksummed when the crate
/// compiles; every problem is a compile error that names its file.
///
/// Accepted layouts, detected per file:
///
/// | layout | example |
/// |---|---|
/// | sqlx simple | `20260101120000_create_users.sql` |
/// | sqlx reversible | `20260101120000_create_users.up.sql` + `.down.sql` |
/// | refinery / Flyway | `V3__create_users.sql` |
/// | diesel | `2026-01-01-120000_create_users/up.sql` + `down.sql` (+ `metadata.toml`) |
///
/// A folder whose subfolders are `postgres/`, `mysql/` and/or `sqlite/` holds
/// one set per dialect. A leading `-- stowage:no-transaction` comment (or
/// sqlx's `-- no-transaction`, or diesel's `run_in_transaction = false`) marks
/// a migration that must run outside a transaction.
///
/// ```
/// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
///
/// let sqlite = MIGRATOR.set(stowage::Dialect::Sqlite).unwrap();
/// assert!(sqlite.len() > 0);
/// ```
///
/// The folder is relative to the crate's `Cargo.toml`; an absolute path is
/// refused, so that a build does not depend on where the checkout is.
// A `macro_rules!` in front of the procedural macro hands it `$crate`: the
// generated code names this crate under whatever name the application
// gave the dependency (`package = "stowage-migrate"`).
#[macro_export]
macro_rules! embed_migrations {
    ($($folder:tt)*) => {
        $crate::__private::embed_migrations!([$crate] $($folder)*)
    };
}

/// Run an `async` test function with a fresh, fully migrated database
/// (feature `testing`).
///
/// The function takes one argument: a `PgPool`, `MySqlPool`, `SqlitePool`,
/// `AnyPool` (connected to the test's own database) or a
/// [`testing::TestDb`]. The server comes from `STOWAGE_TEST_DATABASE_URL` or
/// `DATABASE_URL` (SQLite files in the temporary folder without either). The
/// database is a copy of a template migrated once per migration set, so it
/// costs the same whatever the number of migrations; it is dropped after a
/// passing test and kept, with its name printed, after a failing one.
///
/// Options: `migrator = "path::TO::MIGRATOR"` uses an existing `Migrator`;
/// `migrations = "dir"` embeds another folder; by default `./migrations` is
/// embedded. `server = "ENV_VAR"` takes the server's URL from another
/// variable (a suite testing several backends sets one per backend).
///
/// ```no_run
/// #[stowage::test(migrations = "../migrations")]
/// async fn starts_empty(pool: sqlx::AnyPool) -> Result<(), sqlx::Error> {
///     let todos: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM todos").fetch_one(&pool).await?;
///     assert_eq!(todos, 0);
///     Ok(())
/// }
/// ```
#[cfg(feature = "testing")]
pub use stowage_macros::test;

/// Plumbing for the code `embed_migrations!` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::embedded::{CallbackFile, Migration, MigrationSet, Migrator, Source};
    pub use stowage_macros::embed_migrations;

    /// The pieces stowage sends one at a time when it runs `sql` statement
    /// by statement on `dialect` (MySQL: its units), for the tests that hold
    /// them against the servers' own parse.
    #[cfg(driver)]
    pub fn statements(dialect: crate::Dialect, sql: &str) -> Vec<&str> {
        crate::dialect::of(dialect).map_or_else(|_| Vec::new(), |d| d.statements(sql))
    }
    #[cfg(feature = "testing")]
    pub use crate::testing::harness as testing;
}
