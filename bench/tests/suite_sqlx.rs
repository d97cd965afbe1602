//! The test-suite benchmark's `#[sqlx::test]` side: the same hundred tests
//! at 10, 100 and 500 migrations on each backend (the server from
//! `DATABASE_URL`). Run by `scripts/bench suite`.

#[macro_use]
mod suite;

static PG_10: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx10/postgres");
static MY_10: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx10/mysql");
static LITE_10: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx10/sqlite");
static PG_100: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx100/postgres");
static MY_100: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx100/mysql");
static LITE_100: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx100/sqlite");
static PG_500: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx/postgres");
static MY_500: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx/mysql");
static LITE_500: sqlx::migrate::Migrator = sqlx::migrate!("generated/sqlx/sqlite");

mod m10 {
    backends!(sqlx, "crate::PG_10", "crate::MY_10", "crate::LITE_10");
}

mod m100 {
    backends!(sqlx, "crate::PG_100", "crate::MY_100", "crate::LITE_100");
}

mod m500 {
    backends!(sqlx, "crate::PG_500", "crate::MY_500", "crate::LITE_500");
}
