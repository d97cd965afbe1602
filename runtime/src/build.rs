//! Helpers for an application's `build.rs`.

/// Tell cargo to rebuild the crate whenever anything in `dir` changes, a new
/// file included.
///
/// `embed_migrations!` already rebuilds when an embedded file is edited; a
/// file *added* to the folder is only seen when cargo is told to watch the
/// folder. Call this from `build.rs` with the folder the macro reads:
///
/// ```no_run
/// // build.rs, in `fn main()`:
/// stowage::build::rerun_if_changed("migrations");
/// ```
///
/// and list `stowage` under `[build-dependencies]` too.
pub fn rerun_if_changed(dir: &str) {
    println!("cargo:rerun-if-changed={dir}");
}
