//! `stowage::connect`: waits for a server that is still starting, gives up
//! after its timeout with the password hidden, and creates missing databases.

use sqlx::migrate::MigrateDatabase;
use std::time::{Duration, Instant};
use stowage::{ConnectOptions, Error};
use stowage_tests::{Backend, free_port, server_url, with_database};

/// The host:port of a server URL.
fn address(url: &str) -> String {
    let rest = &url[url
        .find('@')
        .map_or_else(|| url.find("://").unwrap() + 3, |i| i + 1)..];
    rest.split(['/', '?']).next().unwrap().to_owned()
}

/// After `delay`, forward every connection on `port` to `target`: a server
/// that comes up late.
fn late_proxy(port: u16, target: String, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

fn through_port(url: &str, port: u16) -> String {
    url.replace(&address(url), &format!("127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_for_a_server_that_comes_up_after_3_seconds() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let server = server_url(backend);
        let port = free_port();
        late_proxy(port, address(&server), Duration::from_secs(3));
        let url = through_port(&server, port);
        let started = Instant::now();
        let options = ConnectOptions::default()
            .timeout(Duration::from_secs(30))
            .create_database(false);
        let count: i64 = match backend {
            Backend::Postgres => {
                let pool: sqlx::PgPool = stowage::connect_with(&url, options).await.unwrap();
                sqlx::query_scalar("SELECT 1::bigint")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
            _ => {
                let pool: sqlx::MySqlPool = stowage::connect_with(&url, options).await.unwrap();
                sqlx::query_scalar("SELECT CAST(1 AS SIGNED)")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count, 1);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(3),
            "{backend:?}: connected after {waited:?}, before the server was up"
        );
        assert!(waited < Duration::from_secs(15), "{backend:?}: {waited:?}");
    }
}

#[tokio::test]
async fn gives_up_after_the_timeout_without_showing_the_password() {
    let port = free_port();
    let url = format!("postgres://app:hunter2secret@127.0.0.1:{port}/app");
    let started = Instant::now();
    let options = ConnectOptions::default().timeout(Duration::from_secs(2));
    let error = stowage::connect_with::<sqlx::Postgres>(&url, options)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let Error::Connect {
        url: shown,
        attempts,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert!(*attempts > 1, "it retried");
    assert_eq!(shown, &format!("postgres://app:***@127.0.0.1:{port}/app"));
    let message = error.to_string();
    assert!(!message.contains("hunter2secret"), "{message}");
    assert!(!format!("{error:?}").contains("hunter2secret"), "{error:?}");
    assert!(message.contains("app:***@"), "{message}");

    // A URL that cannot work fails at once, also without the password.
    let started = Instant::now();
    let error =
        stowage::connect::<sqlx::Postgres>("postgres://app:hunter2secret@127.0.0.1:notaport/app")
            .await
            .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no retry for a bad URL"
    );
    assert!(!error.to_string().contains("hunter2secret"), "{error}");
}

#[tokio::test]
async fn creates_a_missing_database() {
    let name = format!("stowage_created_{}", std::process::id());
    for backend in [Backend::Postgres, Backend::MySql] {
        let url = with_database(&server_url(backend), &name);
        match backend {
            Backend::Postgres => {
                assert!(!sqlx::Postgres::database_exists(&url).await.unwrap());
                let pool: sqlx::PgPool = stowage::connect(&url).await.unwrap();
                pool.close().await;
                assert!(sqlx::Postgres::database_exists(&url).await.unwrap());
                sqlx::Postgres::drop_database(&url).await.unwrap();
            }
            _ => {
                assert!(!sqlx::MySql::database_exists(&url).await.unwrap());
                let pool: sqlx::MySqlPool = stowage::connect(&url).await.unwrap();
                pool.close().await;
                assert!(sqlx::MySql::database_exists(&url).await.unwrap());
                sqlx::MySql::drop_database(&url).await.unwrap();
            }
        }
    }
    let path = std::env::temp_dir().join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    let pool: sqlx::AnyPool = stowage::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    pool.close().await;
    assert!(path.exists(), "the SQLite file was created");
    std::fs::remove_file(&path).unwrap();
}

/// With creating off, a missing database is an error at once that says so,
/// and nothing is created; an unreachable server still gets the timeout it
/// was given, not the pool's own.
#[tokio::test]
async fn with_creating_off_a_missing_database_is_an_error_and_stays_missing() {
    let name = format!("stowage_not_created_{}", std::process::id());
    let off = || {
        ConnectOptions::default()
            .timeout(Duration::from_secs(30))
            .create_database(false)
    };
    let sqlite = std::env::temp_dir().join(format!("{name}.db"));
    let _ = std::fs::remove_file(&sqlite);
    let urls = [
        with_database(&server_url(Backend::Postgres), &name),
        with_database(&server_url(Backend::MySql), &name),
        format!("sqlite://{}", sqlite.display()),
    ];
    for url in &urls {
        let started = Instant::now();
        let error = stowage::connect_with::<sqlx::Any>(url, off())
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{url}: no retries"
        );
        let Error::Connect {
            attempts, reason, ..
        } = &error
        else {
            panic!("{url}: {error}")
        };
        assert_eq!(*attempts, 1, "{url}");
        assert!(reason.contains("does not exist"), "{url}: {reason}");
        assert!(!sqlx::Any::database_exists(url).await.unwrap(), "{url}");
    }
    assert!(!sqlite.exists());

    let url = format!("postgres://app@127.0.0.1:{}/app", free_port());
    let started = Instant::now();
    let options = off().timeout(Duration::from_secs(1));
    let error = stowage::connect_with::<sqlx::Postgres>(&url, options)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A proxy on a new port to `target` that records the database each
/// PostgreSQL client names in its startup message.
async fn recording_proxy(target: String) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (inbound, _) = listener.accept().await.unwrap();
            let Ok(outbound) = tokio::net::TcpStream::connect(target.clone()).await else {
                continue;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = inbound.into_split();
                let (mut from_server, mut to_server) = outbound.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                // The startup message comes first: "database\0<name>\0".
                let mut start = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = from_client.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 || to_server.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    start.extend_from_slice(&chunk[..n]);
                    let key = b"database\0";
                    if let Some(at) = start.windows(key.len()).position(|w| w == key) {
                        let rest = &start[at + key.len()..];
                        if let Some(end) = rest.iter().position(|&b| b == 0) {
                            let name = String::from_utf8_lossy(&rest[..end]).into_owned();
                            record.lock().unwrap().push(name);
                            break;
                        }
                    }
                }
                let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            });
        }
    });
    (port, seen)
}

/// Connecting to a database that exists touches no other database: a user
/// who may not enter the server's maintenance database can still connect.
/// A missing database is looked for, and created, only then.
#[tokio::test(flavor = "multi_thread")]
async fn an_existing_database_is_reached_without_the_maintenance_database() {
    let server = server_url(Backend::Postgres);
    let (port, seen) = recording_proxy(address(&server)).await;
    // In plain text, so that the proxy can read the startup messages.
    let proxied = through_port(&server, port);
    let plain = |url: String| {
        let joint = if url.contains('?') { '&' } else { '?' };
        format!("{url}{joint}sslmode=disable")
    };
    let existing = format!("stowage_exists_{}", std::process::id());
    let missing = format!("stowage_missing_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&server).await.unwrap();
    for name in [&existing, &missing] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {existing}")))
        .execute(&admin)
        .await
        .unwrap();

    let pool: sqlx::PgPool = stowage::connect(&plain(with_database(&proxied, &existing)))
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    pool.close().await;
    let names = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n == &existing), "{names:?}");

    let pool: sqlx::PgPool = stowage::connect(&plain(with_database(&proxied, &missing)))
        .await
        .unwrap();
    pool.close().await;
    let names = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        names.iter().any(|n| n != &missing),
        "the maintenance database: {names:?}"
    );
    assert!(
        sqlx::Postgres::database_exists(&with_database(&server, &missing))
            .await
            .unwrap()
    );

    for name in [&existing, &missing] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
}

/// Runs `statements` on `admin`, in order.
async fn as_admin<DB: sqlx::Database>(admin: &sqlx::Pool<DB>, statements: &[String])
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(admin)
            .await
            .unwrap();
    }
}

/// `error` is a connect error whose message says each of `says`, and not `not`.
fn connect_error_says(error: Error, says: &[&str], not: &str) {
    let message = error.to_string();
    assert!(matches!(error, Error::Connect { .. }), "{message}");
    assert!(
        says.iter().all(|part| message.contains(part)) && !message.contains(not),
        "{message}"
    );
}

/// `url` with its user replaced by `user` (no password).
fn as_user(url: &str, user: &str) -> String {
    let scheme_end = url.find("://").unwrap() + 3;
    let host = url.find('@').map_or(scheme_end, |at| at + 1);
    format!("{}{user}@{}", &url[..scheme_end], &url[host..])
}

/// A server with no connection to spare for the user says so, instead of
/// telling the user to check that it runs: a PostgreSQL role with
/// `CONNECTION LIMIT 0`, and a MariaDB user whose one allowed connection
/// is in use.
#[tokio::test]
async fn a_full_server_says_to_close_connections_or_raise_the_limit() {
    let user = format!("stowage_full_{}", std::process::id());
    let options = || {
        ConnectOptions::default()
            .timeout(Duration::from_secs(1))
            .create_database(false)
    };
    let check = |error| {
        connect_error_says(
            error,
            &["has no connection to spare", "max_connections"],
            "check that the server is running",
        );
    };

    let admin = sqlx::PgPool::connect(&server_url(Backend::Postgres))
        .await
        .unwrap();
    as_admin(
        &admin,
        &[
            format!("DROP ROLE IF EXISTS {user}"),
            format!("CREATE ROLE {user} LOGIN CONNECTION LIMIT 0"),
        ],
    )
    .await;
    let url = as_user(&server_url(Backend::Postgres), &user);
    let error = stowage::connect_with::<sqlx::Postgres>(&url, options()).await;
    as_admin(&admin, &[format!("DROP ROLE {user}")]).await;
    check(error.unwrap_err());

    let admin = sqlx::MySqlPool::connect(&server_url(Backend::MySql))
        .await
        .unwrap();
    let url = as_user(&server_url(Backend::MySql), &user);
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    as_admin(
        &admin,
        &[
            format!("DROP USER IF EXISTS '{user}'@'%'"),
            format!("CREATE USER '{user}'@'%' WITH MAX_USER_CONNECTIONS 1"),
            format!("GRANT ALL ON `{database}`.* TO '{user}'@'%'"),
        ],
    )
    .await;
    let held = <sqlx::MySqlConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let error = stowage::connect_with::<sqlx::MySql>(&url, options()).await;
    drop(held);
    as_admin(&admin, &[format!("DROP USER '{user}'@'%'")]).await;
    check(error.unwrap_err());
}

/// A user who may log in but not use the database is told so, whether or
/// not stowage may create databases; it is not told that the database does
/// not exist (a MySQL user without rights cannot see it), and nothing is
/// created.
#[tokio::test]
async fn a_user_without_rights_to_the_database_is_told_to_grant_them() {
    let user = format!("stowage_norights_{}", std::process::id());
    let check = |error| {
        connect_error_says(
            error,
            &["may log in but not use this database"],
            "does not exist",
        );
    };

    // PostgreSQL: a database with CONNECT revoked from PUBLIC.
    let admin = sqlx::PgPool::connect(&server_url(Backend::Postgres))
        .await
        .unwrap();
    as_admin(
        &admin,
        &[
            format!("DROP DATABASE IF EXISTS {user}"),
            format!("DROP ROLE IF EXISTS {user}"),
            format!("CREATE DATABASE {user}"),
            format!("REVOKE CONNECT ON DATABASE {user} FROM PUBLIC"),
            format!("CREATE ROLE {user} LOGIN"),
        ],
    )
    .await;
    let url = with_database(&as_user(&server_url(Backend::Postgres), &user), &user);
    let mut errors = Vec::new();
    for create in [false, true] {
        let options = ConnectOptions::default()
            .timeout(Duration::from_secs(1))
            .create_database(create);
        errors.push(stowage::connect_with::<sqlx::Postgres>(&url, options).await);
    }
    as_admin(
        &admin,
        &[format!("DROP DATABASE {user}"), format!("DROP ROLE {user}")],
    )
    .await;
    for error in errors {
        check(error.unwrap_err());
    }

    // MySQL: a user with no grants, on a database that exists.
    let admin = sqlx::MySqlPool::connect(&server_url(Backend::MySql))
        .await
        .unwrap();
    as_admin(
        &admin,
        &[
            format!("DROP USER IF EXISTS '{user}'@'%'"),
            format!("CREATE USER '{user}'@'%'"),
        ],
    )
    .await;
    let url = as_user(&server_url(Backend::MySql), &user);
    let schemas = "SELECT COUNT(*) FROM information_schema.schemata";
    let before: i64 = sqlx::query_scalar(schemas).fetch_one(&admin).await.unwrap();
    let mut errors = Vec::new();
    for create in [false, true] {
        let options = ConnectOptions::default()
            .timeout(Duration::from_secs(1))
            .create_database(create);
        errors.push(stowage::connect_with::<sqlx::MySql>(&url, options).await);
    }
    as_admin(&admin, &[format!("DROP USER '{user}'@'%'")]).await;
    for error in errors {
        check(error.unwrap_err());
    }
    let after: i64 = sqlx::query_scalar(schemas).fetch_one(&admin).await.unwrap();
    assert_eq!(before, after, "nothing was created");
}
