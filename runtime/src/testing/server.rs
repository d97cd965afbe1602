//! [`TestServer`]: what differs between the databases in making test
//! databases. `flow.rs` implements it for every server that copies a
//! template (PostgreSQL, MySQL), `sqlite.rs` for SQLite.

use super::TestDb;
use crate::connect::redact;
use crate::engine::sql_dialect::BoxFuture;
use crate::{Dialect, Error, Migrator};
use std::time::Duration;

/// What a test's database is made from: a copy of `template`, which
/// `migrator` builds; a spare claimed when `claim` and one is ready.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wanted<'a> {
    pub(super) template: &'a str,
    pub(super) migrator: &'a Migrator,
    pub(super) claim: bool,
}

/// One kind of server's way of making and removing test databases.
pub(super) trait TestServer: Send + Sync {
    /// The URL of test database `name` on `server` (making ready what it
    /// needs, such as SQLite's folder).
    fn database_url(&self, server: &str, name: &str) -> Result<String, Error>;

    /// Make sure the template exists (building it once, under a lock),
    /// then give `db` a copy of it: a spare (made ahead, or reset),
    /// claimed, when wanted and one is ready, or else a new copy, whose
    /// time it returns. Sets `db.created` once the database may exist on the
    /// server, and `db.since` when it can be reset at the end.
    fn create<'a>(
        &'a self,
        db: &'a mut TestDb,
        wanted: Wanted<'a>,
    ) -> BoxFuture<'a, Result<Option<Duration>, Error>>;

    /// Create `db` empty.
    fn create_empty<'a>(&'a self, db: &'a mut TestDb) -> BoxFuture<'a, Result<(), Error>>;

    /// Whether copies are slow enough to make ahead as spares.
    fn makes_spares(&self) -> bool;

    /// Make one spare copy of `template` for a later test, unless `wanted`
    /// are ready or as many are being made.
    fn make_spare<'a>(
        &'a self,
        server: &'a str,
        template: &'a str,
        wanted: usize,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Whether resetting a finished test's database costs less than a new
    /// copy, given how long its own copy took (`None`: it was a spare).
    fn reset_pays(&self, _copied: Option<Duration>) -> bool {
        true
    }

    /// Reset a finished test's database to its template's state and make it
    /// a spare, unless `wanted` are ready; `false` when it is not (then the
    /// caller drops it). Never more than `wanted` spares once it is done.
    fn recycle<'a>(
        &'a self,
        _db: &'a Finished,
        _wanted: usize,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async { Ok(false) })
    }

    /// A new copy of `template` named `name`, when the template is there
    /// and complete (`false` when it is not: nothing is made or built).
    fn copy_template<'a>(
        &'a self,
        server: &'a str,
        template: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Drop test database `name`.
    fn drop_database<'a>(
        &'a self,
        server: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Every database on `server` whose name starts as stowage's do (of
    /// any project: the caller keeps its own), and what the server says of it.
    fn inventory<'a>(&'a self, server: &'a str) -> BoxFuture<'a, Result<Vec<Entry>, Error>>;

    /// Drop `entry` unless it is in use by now (then `false`); an unclaimed
    /// spare is claimed first, so that no test claims it while it goes.
    fn remove<'a>(
        &'a self,
        server: &'a str,
        entry: &'a Entry,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Mark test database `name` as kept by a failing test; its name now.
    fn keep<'a>(&'a self, server: &'a str, name: &'a str) -> BoxFuture<'a, Result<String, Error>>;
}

/// A finished test's database, as [`TestServer::recycle`] needs it.
#[derive(Debug, Clone)]
pub(super) struct Finished {
    pub(super) server: String,
    pub(super) name: String,
    pub(super) template: String,
    /// What `create` recorded for a reset.
    pub(super) since: Option<String>,
}

/// A database as the server lists it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) name: String,
    /// Whether a session is connected to it.
    pub(super) in_use: bool,
    /// MySQL: the set whose spare its mark says it is (unclaimed).
    pub(super) spare_of: Option<String>,
    /// MySQL: the process that claimed it (or kept it), and when; a claimed
    /// spare keeps the name, and so the date and process, it was made with.
    pub(super) owner: Option<(u32, u64)>,
    /// MySQL: kept by a failing test (its name cannot change).
    pub(super) kept: bool,
}

/// The implementation for `dialect`.
pub(super) fn of(dialect: Dialect) -> Result<&'static dyn TestServer, Error> {
    match dialect {
        Dialect::Postgres => Ok(&super::postgres::Postgres),
        Dialect::MySql => Ok(&super::mysql::MySql),
        Dialect::Sqlite => Ok(&super::sqlite::Sqlite),
        other => Err(Error::UnsupportedBackend(other.to_string())),
    }
}

/// Run `work` to completion on a runtime of its own, from sync code (a
/// `Drop`, a thread of our own).
pub(super) fn block_on<T>(work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidConfig(format!("cannot start a runtime: {e}")))?
        .block_on(work)
}

pub(crate) fn test_error(what: &str, server: &str) -> impl FnOnce(sqlx::Error) -> Error + use<> {
    let (what, server) = (what.to_owned(), redact(server));
    move |source| {
        let hint = match source
            .as_database_error()
            .and_then(|db| db.code())
            .as_deref()
        {
            Some("42501") => {
                " (the user may not create databases: `ALTER ROLE … CREATEDB` on PostgreSQL)"
            }
            Some("42000") => {
                " (the user may not create databases: `GRANT ALL ON *.* TO …` on MySQL)"
            }
            _ => "",
        };
        Error::Database {
            context: format!("{what} on {server}{hint}"),
            source,
        }
    }
}
