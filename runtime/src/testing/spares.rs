//! Spare copies, made ahead: while a test runs, a thread of its own makes a
//! copy of the template for a later test to claim.

use super::server::{self, TestServer};
use crate::Error;

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
