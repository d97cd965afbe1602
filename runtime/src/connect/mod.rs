//! [`connect`]: a pool that waits for the database to come up, creates the
//! database when it is missing, and never shows a password.

use crate::Error;
use crate::error::{is_denied, is_transient};
pub(crate) use redact::redact;
use redact::{scrub};
use sqlx::migrate::MigrateDatabase;
use std::time::{Duration, Instant};

mod redact;

/// How [`connect_with`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long to keep retrying while the server is unreachable or starting
    /// (default 60 s).
    pub timeout: Duration,
    /// Create the database when it does not exist (default `true`).
    pub create_database: bool,
    /// The pool's size (default 10).
    pub max_connections: u32,
    /// Say on stderr while waiting for the server, every few seconds, and
    /// when the database is created (default `false`: only `tracing`
    /// events). The in-binary CLI says it.
    pub say_waiting: bool,
    /// Let sqlx log each statement, and warn of slow ones, with its text
    /// (default `true`, sqlx's own default). The in-binary CLI turns it off:
    /// its progress lines say what runs, and a slow migration's statement
    /// would otherwise be dumped whole, history row included.
    pub log_statements: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(60),
            create_database: true,
            max_connections: 10,
            say_waiting: false,
            log_statements: true,
        }
    }
}

impl ConnectOptions {
    /// Set [`timeout`](Self::timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Set [`create_database`](Self::create_database).
    #[must_use]
    pub fn create_database(mut self, create: bool) -> Self {
        self.create_database = create;
        self
    }

    /// Set [`log_statements`](Self::log_statements).
    #[must_use]
    pub fn log_statements(mut self, log: bool) -> Self {
        self.log_statements = log;
        self
    }

    /// Set [`say_waiting`](Self::say_waiting).
    #[must_use]
    pub fn say_waiting(mut self, say: bool) -> Self {
        self.say_waiting = say;
        self
    }

    /// Set [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }
}

/// A backend [`connect`] can open a pool for: `sqlx::Postgres`,
/// `sqlx::MySql`, `sqlx::Sqlite` or `sqlx::Any`.
pub trait Backend: sqlx::Database + MigrateDatabase + sealed::Sealed {
    #[doc(hidden)]
    fn prepare() {}
    /// The dialect of this backend's URLs; `None` for `Any`, which takes
    /// them all.
    #[doc(hidden)]
    const DIALECT: Option<crate::Dialect> = None;
}

mod sealed {
    pub trait Sealed {}
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}
#[cfg(feature = "postgres")]
impl Backend for sqlx::Postgres {
    const DIALECT: Option<crate::Dialect> = Some(crate::Dialect::Postgres);
}
#[cfg(feature = "mysql")]
impl sealed::Sealed for sqlx::MySql {}
#[cfg(feature = "mysql")]
impl Backend for sqlx::MySql {
    const DIALECT: Option<crate::Dialect> = Some(crate::Dialect::MySql);
}
#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}
#[cfg(feature = "sqlite")]
impl Backend for sqlx::Sqlite {
    const DIALECT: Option<crate::Dialect> = Some(crate::Dialect::Sqlite);
}
#[cfg(feature = "any")]
impl sealed::Sealed for sqlx::Any {}
#[cfg(feature = "any")]
impl Backend for sqlx::Any {
    fn prepare() {
        sqlx::any::install_default_drivers();
    }
}

/// Open a pool on `url` with the default [`ConnectOptions`]: wait up to 60 s
/// for the server, create the database if it is missing.
///
/// A database that exists is reached directly; only a missing one is looked
/// for and created through the server's maintenance database (`postgres` on
/// PostgreSQL), so a user who may not enter that one still connects.
///
/// The pool type follows from the annotation:
///
/// ```no_run
/// # async fn start() -> Result<(), stowage::Error> {
/// let pool: sqlx::PgPool = stowage::connect("postgres://app:secret@db/app").await?;
/// let any: sqlx::AnyPool = stowage::connect("sqlite://app.db").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::Connect`] when the server is still unreachable after the
/// timeout, or refuses the connection for a reason waiting cannot fix
/// (authentication, a bad URL); its message holds the URL with the password
/// replaced by `***`.
pub async fn connect<DB: Backend>(url: &str) -> Result<sqlx::Pool<DB>, Error> {
    connect_with(url, ConnectOptions::default()).await
}

/// [`connect`] with options.
///
/// # Errors
///
/// As [`connect`].
pub async fn connect_with<DB: Backend>(
    url: &str,
    options: ConnectOptions,
) -> Result<sqlx::Pool<DB>, Error> {
    DB::prepare();
    let shown = redact(url);
    let attempt = || async {
        // One plain connection first: the pool's own connect would keep
        // retrying a refused connection for its whole acquire timeout. Only
        // when it fails for good is the database looked for (through the
        // server's maintenance database, which the user may not be allowed
        // into) and created.
        match <DB::Connection as sqlx::Connection>::connect(url).await {
            Ok(probe) => sqlx::Connection::close(probe).await?,
            Err(error)
                if options.create_database
                    && !is_transient(&error)
                    && !is_denied(&error)
                    && !matches!(error, sqlx::Error::Configuration(_))
                    && matches!(DB::database_exists(url).await, Ok(false)) =>
            {
                tracing::info!(url = %shown, "creating the database");
                match DB::create_database(url).await {
                    Ok(()) => {
                        if options.say_waiting {
                            eprintln!("created the database {shown}, which did not exist");
                        }
                    }
                    // Another replica created it first.
                    Err(error) if DB::database_exists(url).await.unwrap_or(false) => {
                        tracing::debug!(%error, "the database was created meanwhile");
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(error) => return Err(error),
        }
        let mut connect: <DB::Connection as sqlx::Connection>::Options = url.parse()?;
        if !options.log_statements {
            connect = sqlx::ConnectOptions::disable_statement_logging(connect);
        }
        sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await
    };
    retrying::<DB, _, _, _>(url, &options, attempt).await
}

/// One connection, not a pool, with [`connect_with`]'s waiting and errors;
/// it never creates the database.
#[cfg(feature = "testing")]
pub(crate) async fn connect_one<DB: Backend>(
    url: &str,
    timeout: Duration,
) -> Result<DB::Connection, Error> {
    DB::prepare();
    let options = ConnectOptions::default()
        .timeout(timeout)
        .create_database(false);
    retrying::<DB, _, _, _>(url, &options, || {
        <DB::Connection as sqlx::Connection>::connect(url)
    })
    .await
}

/// Run `attempt` until it succeeds, fails for good, or `timeout` has passed,
/// with exponential backoff and jitter in between.
async fn retrying<DB: Backend, T, F, Fut>(
    url: &str,
    options: &ConnectOptions,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let (timeout, create_database) = (options.timeout, options.create_database);
    let shown = redact(url);
    let started = Instant::now();
    let mut next_said = Duration::ZERO;
    let mut attempts = 0u32;
    let mut pause = Duration::from_millis(100);
    let fail = |attempts: u32, reason: &dyn std::fmt::Display| Error::Connect {
        url: shown.clone(),
        attempts,
        waited: started.elapsed(),
        reason: scrub(&reason.to_string(), url),
    };
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(connected) => {
                tracing::debug!(url = %shown, attempts, "connected");
                return Ok(connected);
            }
            Err(error) => error,
        };
        if let sqlx::Error::Configuration(reason) = &error {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            let feature = match scheme {
                "postgres" | "postgresql" => Some("postgres"),
                "mysql" | "mariadb" => Some("mysql"),
                "sqlite" => Some("sqlite"),
                _ => None,
            };
            if let Some(feature) = feature
                && reason.to_string().contains("no driver found")
            {
                return Err(Error::MissingFeature {
                    scheme: scheme.to_owned(),
                    feature,
                });
            }
            return Err(Error::InvalidUrl {
                url: shown,
                reason: scrub(&reason.to_string(), url),
            });
        }
        if !is_transient(&error) {
            // A user denied the database may not see it either.
            if !create_database
                && !is_denied(&error)
                && matches!(DB::database_exists(url).await, Ok(false))
            {
                return Err(fail(attempts, &NO_DATABASE));
            }
            return Err(fail(attempts, &crate::error::server_message(&error)));
        }
        let waited = started.elapsed();
        let reason = crate::error::server_message(&error);
        if waited >= timeout {
            return Err(fail(attempts, &reason));
        }
        let reason = scrub(&reason, url);
        tracing::warn!(url = %shown, attempt = attempts, ?waited, %reason, "database not reachable yet; retrying");
        if options.say_waiting && waited >= next_said {
            eprintln!(
                "waiting for the database at {shown} ({reason}); {:.0?} so far, giving up after {:.0?}",
                waited, timeout
            );
            next_said = waited + Duration::from_secs(5);
        }
        let jitter = Duration::from_nanos(u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
                % 100_000_000,
        ));
        tokio::time::sleep((pause + jitter).min(timeout.saturating_sub(waited))).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// The reason of an [`Error::Connect`] for a database that does not exist.
pub(crate) const NO_DATABASE: &str = "the database does not exist (and creating it is off)";

/// The database URL of the environment: `DATABASE_URL`, or when it is not
/// set, the contents of the file `DATABASE_URL_FILE` names (a Docker or
/// Kubernetes secret), without its trailing newline. `None` when neither
/// is set.
///
/// ```no_run
/// # async fn start() -> Result<(), stowage::Error> {
/// let url = stowage::database_url()?.unwrap_or_else(|| "sqlite://app.db".to_owned());
/// let pool: sqlx::AnyPool = stowage::connect(&url).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfig`] when the file cannot be read, naming it (never
/// its contents).
pub fn database_url() -> Result<Option<String>, Error> {
    if let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return Ok(Some(url));
    }
    let Some(path) = std::env::var_os("DATABASE_URL_FILE").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|error| {
        Error::InvalidConfig(format!(
            "cannot read the database URL from DATABASE_URL_FILE={}: {error}",
            std::path::Path::new(&path).display()
        ))
    })?;
    let url = text.trim();
    if url.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "DATABASE_URL_FILE={} is empty; it should hold the database URL",
            std::path::Path::new(&path).display()
        )));
    }
    Ok(Some(url.to_owned()))
}

/// The dialect of a URL, by its scheme.
#[cfg(feature = "any")]
pub(crate) fn dialect_of_url(url: &str) -> Result<crate::Dialect, Error> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(crate::Dialect::Postgres)
    } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        Ok(crate::Dialect::MySql)
    } else if url.starts_with("sqlite:") {
        Ok(crate::Dialect::Sqlite)
    } else {
        Err(Error::InvalidUrl {
            url: redact(url),
            reason: "the scheme is not postgres, mysql or sqlite".to_owned(),
        })
    }
}

/// Replace the database (the URL's path) of a server URL.
#[cfg(feature = "any")]
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
