//! An application without clap that hands its command line to
//! `stowage::cli::main`: the path the one-shot `migrate` job takes.
//!
//! `STOWAGE_TEST_SET` picks what it embeds: the operate set by default;
//! `slow`, a six-second PostgreSQL migration; `v1`, `v2` and `v2-lease` (the
//! lock as a lease row), and `apply-slow` (a table, then a four-second
//! migration), the sets of the deployment tests; `callbacks`, two SQLite
//! migrations with a slow `afterEachMigrate.sql`; `gap`, v1 without its
//! migration 2; `schema`, the sets of every kind of object the schema
//! tests dump; `older`, `newer`, `newer-no-down`, `newer-compatible` and
//! `newer-slow-down` (3's down SQL waits four seconds between its two
//! statements), one application before and after its migration 3, of the
//! rollback tests. `STOWAGE_TEST_LOCK_TIMEOUT`
//! sets the lock timeout in seconds. `STOWAGE_TEST_TRACING=1` installs a
//! `tracing` subscriber at `warn` on stderr first, as an application with
//! logging does.

use std::time::Duration;
use stowage::Migrator;

static MIGRATOR: Migrator = stowage::embed_migrations!("fixtures/operate");
static SLOW: Migrator = stowage::embed_migrations!("fixtures/cli/slow");
static V1: Migrator = stowage::embed_migrations!("fixtures/apply/v1");
static V2: Migrator = stowage::embed_migrations!("fixtures/apply/v2");
static APPLY_SLOW: Migrator = stowage::embed_migrations!("fixtures/apply/slow");
static GAP: Migrator = stowage::embed_migrations!("fixtures/apply/gap");
static CALLBACKS: Migrator = stowage::embed_migrations!("fixtures/cli/callbacks");
static SCHEMA: Migrator = stowage::embed_migrations!("fixtures/schema");
static OLDER: Migrator = stowage::embed_migrations!("fixtures/rollback/older");
static NEWER: Migrator = stowage::embed_migrations!("fixtures/rollback/newer");
static NEWER_NO_DOWN: Migrator = stowage::embed_migrations!("fixtures/rollback/newer_no_down");
static NEWER_COMPATIBLE: Migrator =
    stowage::embed_migrations!("fixtures/rollback/newer_compatible");
static NEWER_SLOW_DOWN: Migrator = stowage::embed_migrations!("fixtures/rollback_slow");

fn main() {
    if std::env::var_os("STOWAGE_TEST_TRACING").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let mut migrator = match std::env::var("STOWAGE_TEST_SET").as_deref() {
        Ok("slow") => SLOW.clone(),
        Ok("v1") => V1.clone(),
        Ok("v2") => V2.clone(),
        Ok("v2-lease") => V2.clone().with_lock(stowage::Lock::Lease),
        Ok("apply-slow") => APPLY_SLOW.clone(),
        Ok("callbacks") => CALLBACKS.clone(),
        Ok("gap") => GAP.clone(),
        Ok("schema") => SCHEMA.clone(),
        Ok("older") => OLDER.clone().placeholder("tags", "tags"),
        Ok("newer") => NEWER.clone().placeholder("tags", "tags"),
        Ok("newer-no-down") => NEWER_NO_DOWN.clone(),
        Ok("newer-compatible") => NEWER_COMPATIBLE.clone(),
        Ok("newer-slow-down") => NEWER_SLOW_DOWN.clone(),
        _ => MIGRATOR.clone(),
    };
    if let Some(seconds) = std::env::var("STOWAGE_TEST_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        migrator = migrator.with_lock_timeout(Duration::from_secs(seconds));
    }
    stowage::cli::main(&migrator)
}
