//! [`cleanup`]: sweep the test databases left behind.

use super::names::{dialect_of, now_secs};
use super::server;
use crate::Error;
use std::time::Duration;

/// Drop the test databases (and SQLite test files) older than `older_than`
/// on `server`, such as those kept by failing tests; the number dropped.
/// Databases with open connections are in use and left alone.
///
/// # Errors
///
/// When the server cannot be reached or refuses to drop a database.
pub async fn cleanup(server: &str, older_than: Duration) -> Result<usize, Error> {
    let cutoff = now_secs().saturating_sub(older_than.as_secs());
    server::of(dialect_of(server)?)?
        .sweep(server, cutoff, false)
        .await
}
