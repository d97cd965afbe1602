//! Spare copies, made ahead: while a test runs, a thread of its own makes a
//! copy of the template for a later test to claim.

use super::server::{self, TestServer};
use crate::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many spare copies to keep ready per template: `STOWAGE_TEST_SPARES`,
/// else the number of CPUs (at most 8).
pub(super) fn wanted() -> Result<usize, Error> {
    match std::env::var("STOWAGE_TEST_SPARES") {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map_err(|_| {
            Error::InvalidConfig(format!(
                "STOWAGE_TEST_SPARES must be the number of spare copies to keep ready \
                 (0 turns them off), not {value:?}"
            ))
        }),
        _ => Ok(std::thread::available_parallelism().map_or(2, |n| n.get().min(8))),
    }
}

/// A copy slower than this (in milliseconds) is worth making ahead of the
/// test that needs it.
static WORTH_AHEAD: AtomicU64 = AtomicU64::new(100);

/// Where a reset costs about what a small copy does (MySQL), a database
/// whose copy took less than this (in milliseconds) is dropped, not reset.
static RESET_AFTER: AtomicU64 = AtomicU64::new(50);

/// Whether a reset pays for a database whose own copy took `copied`
/// (`None`: a spare, which was reset or made ahead because copies are slow).
pub(super) fn reset_pays(copied: Option<Duration>) -> bool {
    copied.is_none_or(|took| took.as_millis() >= u128::from(RESET_AFTER.load(Ordering::Relaxed)))
}

/// Reset databases whose copy took `threshold` or more (tests of resets).
pub(super) fn reset_after(threshold: Duration) {
    let ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
    RESET_AFTER.store(ms, Ordering::Relaxed);
}

/// Make spare copies ahead after copies slower than `threshold` (tests of
/// the spares themselves).
pub(super) fn copy_ahead_after(threshold: Duration) {
    let ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
    WORTH_AHEAD.store(ms, Ordering::Relaxed);
}

/// Whether to make a spare copy ahead for a later test: only when this test
/// found none ready and made its own copy, and that copy was slow (the
/// benchmark of a small suite showed copies made ahead of cheap ones cost
/// more than they save). Finished tests' databases, reset, are the spares
/// otherwise.
pub(super) fn pay(wanted: usize, kind: &dyn TestServer, copied: Option<Duration>) -> bool {
    wanted > 0
        && kind.makes_spares()
        && copied
            .is_some_and(|took| took.as_millis() >= u128::from(WORTH_AHEAD.load(Ordering::Relaxed)))
}

/// Make one spare copy of `template` in a thread of its own, unless `wanted`
/// are ready or as many are being made.
pub(super) fn start_refill(
    kind: &'static dyn TestServer,
    server: &str,
    template: &str,
    wanted: usize,
) -> Option<std::thread::JoinHandle<()>> {
    let (server, template) = (server.to_owned(), template.to_owned());
    let refill = move || {
        if let Err(error) = server::block_on(kind.make_spare(&server, &template, wanted)) {
            eprintln!("stowage: could not make a spare copy of {template}: {error}");
        }
    };
    std::thread::Builder::new()
        .name("stowage-spare".to_owned())
        .spawn(refill)
        .ok()
}
