//! The `build.rs` helper of [stowage-migrate](https://docs.rs/stowage-migrate):
//! rebuild the crate when a migration file is added, not only when one is
//! edited.
//!
//! It has no dependencies, so listing it under `[build-dependencies]` costs
//! a fraction of a second of a cold build, not a second copy of sqlx:
//!
//! ```toml
//! [build-dependencies]
//! stowage-build = "0.1"
//! ```
//!
//! ```no_run
//! // build.rs, in `fn main()`:
//! stowage_build::rerun_if_changed("migrations");
//! ```

#![deny(missing_docs)]

/// Tell cargo to rebuild the crate whenever anything in `dir` changes, a new
/// file included.
///
/// `embed_migrations!` already rebuilds when an embedded file is edited; a
/// file *added* to the folder is only seen when cargo is told to watch the
/// folder. Call this from `build.rs` with the folder the macro reads, relative
/// to the crate's `Cargo.toml` (as the macro's is):
///
/// ```no_run
/// // build.rs, in `fn main()`:
/// stowage_build::rerun_if_changed("migrations");
/// ```
pub fn rerun_if_changed(dir: &str) {
    println!("cargo:rerun-if-changed={dir}");
}
