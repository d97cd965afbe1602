//! The embedded model: what `embed_migrations!` (or `Migrator::from_dir`)
//! builds into the binary, and the settings it is applied with.

pub(crate) mod config;
#[cfg(feature = "include_dir")]
mod from_dir;
pub(crate) mod hooks;
mod migration;
mod migrator;
pub(crate) mod placeholders;
pub(crate) mod stale;

pub use config::{Config, Lock, Policy};
pub use hooks::{HookContext, HookError, HookFuture};
pub use migration::{CallbackFile, Head, Migration, MigrationSet};
pub use migrator::Migrator;
pub use stale::Source;
