//! Helpers for an application's `build.rs`: the [`stowage-build`] crate,
//! re-exported.
//!
//! List `stowage-build` under `[build-dependencies]` rather than this crate:
//! it has no dependencies, where this one would build sqlx a second time for
//! the build script.
//!
//! [`stowage-build`]: https://docs.rs/stowage-build

pub use stowage_build::rerun_if_changed;
