//! One connection of any supported backend, behind the few primitives the
//! migration engine needs: execute a statement, fetch rows,
//! run a multi-statement script, close.

use crate::{Dialect, Error};
use sqlx::{AssertSqlSafe, Row};
use std::ops::{Deref, DerefMut};

/// Something [`Migrator::run`](crate::Migrator::run) can work on: a pool
/// (`&PgPool`, `&MySqlPool`, `&SqlitePool`, `&AnyPool`) or a connection
/// (`&mut PgConnection`, …).
///
/// From a pool, stowage takes one connection for the whole operation: the
/// migration lock is held on it.
pub trait Database<'a>: sealed::Sealed {
    /// The connection the operation works on. Sealed: its types are
    /// stowage's own, unreachable from outside.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn connect(self) -> Connecting<'a>;
}

/// The future of [`Database::connect`]: boxed, because a future type that
/// names the trait's lifetime would keep `run`'s future from being `Send`
/// for `tokio::spawn` (rust-lang/rust#100013).
pub(crate) type Connecting<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Conn<'a>, sqlx::Error>> + Send + 'a>>;

mod sealed {
    pub trait Sealed {}
}

/// A connection borrowed from the caller, taken from a pool (with the pool,
/// to open another connection like it), or opened by stowage on its own.
#[derive(Debug)]
pub(crate) enum Held<'a, C: 'static, P, Q> {
    Borrowed(&'a mut C),
    Pooled(P, Q),
    Own(C),
}

impl<C, P: DerefMut<Target = C>, Q> Deref for Held<'_, C, P, Q> {
    type Target = C;
    fn deref(&self) -> &C {
        match self {
            Held::Borrowed(conn) => conn,
            Held::Pooled(conn, _) => conn,
            Held::Own(conn) => conn,
        }
    }
}

impl<C, P: DerefMut<Target = C>, Q> DerefMut for Held<'_, C, P, Q> {
    fn deref_mut(&mut self) -> &mut C {
        match self {
            Held::Borrowed(conn) => conn,
            Held::Pooled(conn, _) => conn,
            Held::Own(conn) => conn,
        }
    }
}

macro_rules! backends {
    ($($feature:literal $variant:ident $db:ty, $conn:ty;)*) => {
        /// A connection of one of the enabled backends.
        #[derive(Debug)]
        #[allow(clippy::large_enum_variant)]
        pub(crate) enum Conn<'a> {
            $(
                #[cfg(feature = $feature)]
                $variant(Held<'a, $conn, sqlx::pool::PoolConnection<$db>, sqlx::Pool<$db>>),
            )*
        }

        /// A pool a connection came from, to take another from it.
        #[derive(Debug, Clone)]
        pub(crate) enum Pool {
            $(
                #[cfg(feature = $feature)]
                $variant(sqlx::Pool<$db>),
            )*
        }

        impl Pool {
            /// A connection from the pool, as [`Database::connect`] takes it.
            pub(crate) async fn acquire(&self) -> Result<Conn<'static>, sqlx::Error> {
                match self {
                    $(
                        #[cfg(feature = $feature)]
                        Pool::$variant(pool) => Ok(Conn::$variant(Held::Pooled(pool.acquire().await?, pool.clone()))),
                    )*
                }
            }
        }

        impl Conn<'_> {
            /// The same connection, lent: for one operation to call others
            /// on the connection it holds.
            pub(crate) fn reborrow(&mut self) -> Conn<'_> {
                match self {
                    $(
                        #[cfg(feature = $feature)]
                        Conn::$variant(c) => Conn::$variant(Held::Borrowed(&mut **c)),
                    )*
                }
            }

            /// The pool this connection came from; `None` for a lent one.
            pub(crate) fn pool(&self) -> Option<Pool> {
                match self {
                    $(
                        #[cfg(feature = $feature)]
                        Conn::$variant(Held::Pooled(_, pool)) => Some(Pool::$variant(pool.clone())),
                    )*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// A new connection to the same database, outside the pool, when
            /// this one came from a pool (whose settings it is opened with);
            /// `None` for a lent connection.
            #[allow(dead_code)]
            pub(crate) async fn open_another(&mut self) -> Option<Result<Conn<'static>, sqlx::Error>> {
                use sqlx::Connection;
                match self {
                    $(
                        #[cfg(feature = $feature)]
                        Conn::$variant(Held::Pooled(_, pool)) => {
                            let options = pool.connect_options();
                            Some(<$conn>::connect_with(&options).await.map(|c| Conn::$variant(Held::Own(c))))
                        }
                    )*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }

        impl sealed::Sealed for &mut Conn<'_> {}
        impl<'a> Database<'a> for &'a mut Conn<'_> {
            #[allow(private_interfaces)]
            fn connect(self) -> Connecting<'a> {
                Box::pin(async move { Ok(self.reborrow()) })
            }
        }

        $(
            #[cfg(feature = $feature)]
            impl sealed::Sealed for &sqlx::Pool<$db> {}
            #[cfg(feature = $feature)]
            impl<'a> Database<'a> for &'a sqlx::Pool<$db> {
                #[allow(private_interfaces)]
                fn connect(self) -> Connecting<'a> {
                    Box::pin(async move { Ok(Conn::$variant(Held::Pooled(self.acquire().await?, self.clone()))) })
                }
            }
            #[cfg(feature = $feature)]
            impl sealed::Sealed for &mut $conn {}
            #[cfg(feature = $feature)]
            impl<'a> Database<'a> for &'a mut $conn {
                #[allow(private_interfaces)]
                fn connect(self) -> Connecting<'a> {
                    Box::pin(async move { Ok(Conn::$variant(Held::Borrowed(self))) })
                }
            }
        )*

        /// Run the same code on whichever backend a [`Conn`] holds.
        macro_rules! dispatch {
            ($value:expr, $c:ident => $body:expr) => {
                match $value {
                    $(
                        #[cfg(feature = $feature)]
                        Conn::$variant($c) => $body,
                    )*
                }
            };
        }
    };
}

backends! {
    "postgres" Postgres sqlx::Postgres, sqlx::PgConnection;
    "mysql" MySql sqlx::MySql, sqlx::MySqlConnection;
    "sqlite" Sqlite sqlx::Sqlite, sqlx::SqliteConnection;
    "any" Any sqlx::Any, sqlx::AnyConnection;
}

/// The text a resync `SELECT` of [`Conn::script_counted`] returns before a
/// script position.
pub(crate) const RESYNC: &str = "stowage-resync:";

/// The type of a column to read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    I64,
    OptI64,
    Text,
    OptText,
    Bytes,
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    I64(Option<i64>),
    Text(Option<String>),
    Bytes(Vec<u8>),
}

impl Cell {
    pub(crate) fn i64(&self) -> Option<i64> {
        match self {
            Cell::I64(value) => *value,
            _ => None,
        }
    }
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(value) => value.as_deref(),
            _ => None,
        }
    }
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Cell::Bytes(value) => value,
            _ => &[],
        }
    }
}

/// How many times a statement that met a transient error is tried again.
const RETRIES: u32 = 4;

/// Whether a statement that failed with `error` on its `attempt`-th retry
/// is to be tried again: a deadlock or serialization failure
/// ([`is_deadlock`](crate::error::is_deadlock)), up to [`RETRIES`] times,
/// after a pause that grows.
async fn retry(error: &sqlx::Error, attempt: &mut u32) -> bool {
    if !crate::error::is_deadlock(error) || *attempt >= RETRIES {
        return false;
    }
    *attempt += 1;
    tracing::debug!(%error, attempt = *attempt, "retrying one of stowage's statements");
    let pause = std::time::Duration::from_millis(10 << *attempt);
    tokio::time::sleep(pause + super::lock::jitter(pause)).await;
    true
}

macro_rules! decode {
    ($row:expr, $types:expr) => {{
        let row = $row;
        $types
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                Ok(match ty {
                    Ty::I64 => Cell::I64(Some(row.try_get::<i64, _>(i)?)),
                    Ty::OptI64 => Cell::I64(row.try_get::<Option<i64>, _>(i)?),
                    Ty::Text => Cell::Text(Some(row.try_get::<String, _>(i)?)),
                    Ty::OptText => Cell::Text(row.try_get::<Option<String>, _>(i)?),
                    Ty::Bytes => {
                        Cell::Bytes(row.try_get::<Option<Vec<u8>>, _>(i)?.unwrap_or_default())
                    }
                })
            })
            .collect::<Result<Vec<Cell>, sqlx::Error>>()
    }};
}

impl Conn<'_> {
    /// The SQL dialect of this connection.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedBackend`] for an `AnyConnection` of a driver
    /// stowage does not know.
    pub(crate) fn dialect(&self) -> Result<Dialect, Error> {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => Ok(Dialect::Postgres),
            #[cfg(feature = "mysql")]
            Conn::MySql(_) => Ok(Dialect::MySql),
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(_) => Ok(Dialect::Sqlite),
            #[cfg(feature = "any")]
            Conn::Any(conn) => match conn.backend_name() {
                "PostgreSQL" => Ok(Dialect::Postgres),
                "MySQL" => Ok(Dialect::MySql),
                "SQLite" => Ok(Dialect::Sqlite),
                other => Err(Error::UnsupportedBackend(other.to_owned())),
            },
        }
    }

    /// Execute one of stowage's own statements (its values written in as
    /// the dialect's literals, `SqlDialect::text_literal`), on its own (not in a transaction): the number of rows affected. A deadlock,
    /// a serialization failure or a cluster's certification failure (what
    /// a retry of the same statement can get past) is retried a few times.
    pub(crate) async fn execute(
        &mut self,
        sql: String,
    ) -> Result<u64, sqlx::Error> {
        let mut attempt = 0;
        loop {
            match self.execute_once(sql.clone()).await {
                Err(error) if retry(&error, &mut attempt).await => {}
                done => return done,
            }
        }
    }

    /// Fetch every row of one of stowage's own statements, reading the
    /// columns as `types`; retried as [`execute`](Self::execute) is.
    pub(crate) async fn fetch(
        &mut self,
        sql: String,
        types: &[Ty],
    ) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
        let mut attempt = 0;
        loop {
            match self.fetch_once(sql.clone(), types).await {
                Err(error) if retry(&error, &mut attempt).await => {}
                done => return done,
            }
        }
    }

    async fn execute_once(
        &mut self,
        sql: String,
    ) -> Result<u64, sqlx::Error> {
        // PostgreSQL, typed or through `AnyPool`: the simple query protocol,
        // so that stowage's own statements use no prepared statement, which a
        // pooler in transaction mode (PgBouncer) could not keep.
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                let sql = AssertSqlSafe(sql);
                Ok(sqlx::raw_sql(sql).execute(&mut **c).await?.rows_affected())
            }
            #[cfg(feature = "any")]
            Conn::Any(c) if c.backend_name() == "PostgreSQL" => {
                let sql = AssertSqlSafe(sql);
                Ok(sqlx::raw_sql(sql).execute(&mut **c).await?.rows_affected())
            }
            #[allow(unreachable_patterns)]
            _ => dispatch!(self, c => Ok(sqlx::query(AssertSqlSafe(sql)).execute(&mut **c).await?.rows_affected())),
        }
    }

    async fn fetch_once(
        &mut self,
        sql: String,
        types: &[Ty],
    ) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
        // PostgreSQL: the simple query protocol, as in `execute_once`.
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                let sql = AssertSqlSafe(sql);
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **c).await?;
                rows.iter().map(|row| decode!(row, types)).collect()
            }
            #[cfg(feature = "any")]
            Conn::Any(c) if c.backend_name() == "PostgreSQL" => {
                let sql = AssertSqlSafe(sql);
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **c).await?;
                rows.iter().map(|row| decode!(row, types)).collect()
            }
            #[allow(unreachable_patterns)]
            _ => dispatch!(self, c => {
                let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut **c).await?;
                rows.iter().map(|row| decode!(row, types)).collect()
            }),
        }
    }

    /// [`fetch`](Self::fetch) without a prepared statement (the text
    /// protocol, no retry): for a statement whose answer the server may
    /// keep with a prepared statement.
    pub(crate) async fn fetch_unprepared(
        &mut self,
        sql: String,
        types: &[Ty],
    ) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
        dispatch!(self, c => {
            let rows = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(&mut **c).await?;
            rows.iter().map(|row| decode!(row, types)).collect()
        })
    }

    /// The first column of the first row of one statement, read as `ty`;
    /// `None` when there is no row.
    pub(crate) async fn fetch_one(
        &mut self,
        sql: String,
        ty: Ty,
    ) -> Result<Option<Cell>, sqlx::Error> {
        let rows = self.fetch(sql, &[ty]).await?;
        Ok(rows.into_iter().next().and_then(|row| row.into_iter().next()))
    }

    /// Run a script of one or more statements, without parameters.
    pub(crate) async fn script(&mut self, sql: String) -> Result<(), sqlx::Error> {
        dispatch!(self, c => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **c).await.map(drop))
    }

    /// Run a script of several statements; on failure, also say at which
    /// statement (its position in the script) it stopped. Each statement
    /// yields one result, except those marked in `several` (a MySQL `CALL`,
    /// one result per result set of the procedure, then its own): the count
    /// stays on such a statement until the statement after it, a `SELECT` of
    /// [`RESYNC`] and that statement's position, says where the script is.
    pub(crate) async fn script_counted(
        &mut self,
        sql: String,
        several: &[bool],
    ) -> Result<(), (usize, sqlx::Error)> {
        use futures_util::StreamExt;
        use sqlx::Row;
        dispatch!(self, c => {
            let mut at = 0;
            let mut results = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_many(&mut **c);
            while let Some(result) = results.next().await {
                match result {
                    Ok(sqlx::Either::Left(_)) => {
                        if !several.get(at).copied().unwrap_or(false) {
                            at += 1;
                        }
                    }
                    Ok(sqlx::Either::Right(row)) => {
                        let marker = row.try_get::<String, _>(0).ok();
                        if let Some(position) = marker
                            .as_deref()
                            .and_then(|m| m.strip_prefix(RESYNC))
                            .and_then(|p| p.parse().ok())
                        {
                            at = position;
                        }
                    }
                    Err(error) => return Err((at, error)),
                }
            }
            Ok(())
        })
    }

    /// Have a pooled connection closed, not returned to its pool, when it is
    /// dropped: a `run` cancelled while holding the lock (its future dropped
    /// at an `.await`) then leaves no lock and no changed session behind, as
    /// the server releases what a closed session held. A borrowed
    /// connection is left to its owner.
    pub(crate) fn close_on_drop(&mut self) {
        dispatch!(self, c => {
            if let Held::Pooled(conn, _) = c {
                conn.close_on_drop();
            }
        });
    }

    /// Close the connection instead of returning it to its pool, so that the
    /// server releases whatever it still holds (session locks, transactions).
    /// A borrowed connection is left to its owner.
    pub(crate) async fn close(self) {
        dispatch!(self, c => {
            match c {
                Held::Pooled(conn, _) => {
                    let _ = conn.close().await;
                }
                Held::Own(conn) => {
                    let _ = sqlx::Connection::close(conn).await;
                }
                Held::Borrowed(_) => {}
            }
        });
    }
}
