//! The test-suite benchmark's `#[stowage::test]` side: the same hundred
//! tests at 10, 100 and 500 migrations on each backend (the server from
//! `STOWAGE_TEST_DATABASE_URL`; SQLite without it). Run by
//! `scripts/bench suite`.

#[macro_use]
mod suite;

static M10: stowage::Migrator = stowage::embed_migrations!("generated/sqlx10");
static M100: stowage::Migrator = stowage::embed_migrations!("generated/sqlx100");
static M500: stowage::Migrator = stowage::embed_migrations!("generated/sqlx");

mod m10 {
    backends!(stowage, "crate::M10", "crate::M10", "crate::M10");
}

mod m100 {
    backends!(stowage, "crate::M100", "crate::M100", "crate::M100");
}

mod m500 {
    backends!(stowage, "crate::M500", "crate::M500", "crate::M500");
}
