//! Counting the statements sqlx sends, from its `sqlx::query` log events,
//! and the PostgreSQL notices it logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that counts sqlx's statement and notice events and ignores
/// the rest.
#[derive(Debug, Clone, Default)]
pub struct StatementCounter {
    count: Arc<AtomicUsize>,
    notices: Arc<AtomicUsize>,
    next_span: Arc<AtomicUsize>,
}

impl StatementCounter {
    /// How many PostgreSQL notices sqlx logged so far.
    pub fn notices(&self) -> usize {
        self.notices.load(Ordering::SeqCst)
    }

    /// How many statements were logged so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Subscriber for StatementCounter {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) as u64 + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let target = event.metadata().target();
        if target == "sqlx::query" {
            self.count.fetch_add(1, Ordering::SeqCst);
        } else if target.starts_with("sqlx::postgres::notice") {
            self.notices.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
