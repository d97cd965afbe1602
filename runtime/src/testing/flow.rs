//! The life of a test database on a server that copies a template, written
//! once: the template built by one process under a lock, a spare claimed or a
//! copy made, spares made ahead within a bound, a finished test's database
//! reset into a spare, and the spares trimmed to the number wanted. Each
//! server supplies the primitives ([`Copying`]: PostgreSQL in `postgres.rs`,
//! MySQL and MariaDB in `mysql.rs`); SQLite copies a file and needs none of it.

use super::TestDb;
use super::names::{plain_name, with_database};
use super::server::{Entry, Finished, TestServer, Wanted, test_error};
use crate::engine::sql_dialect::BoxFuture;
use crate::{Error, Migrator};
use sqlx::Connection;
use std::time::{Duration, Instant};

/// How long a process waits for another to build the template.
const TEMPLATE_WAIT: Duration = Duration::from_secs(600);
/// How long a process waits to count the spares alone before it leaves a
/// spare too many in place.
const TRIM_WAIT: Duration = Duration::from_secs(60);

/// A maintenance connection, and the server it is to, which errors name.
#[derive(Debug)]
pub(super) struct Maint<C> {
    pub(super) conn: C,
    pub(super) server: String,
}

impl<C> Maint<C> {
    /// A maintenance connection to `server`, of backend `DB`.
    pub(super) async fn open<DB>(server: &str) -> Result<Self, Error>
    where
        DB: crate::connect::Backend<Connection = C>,
    {
        let conn = crate::connect::connect_one::<DB>(server, Duration::from_secs(10)).await?;
        let server = server.to_owned();
        Ok(Maint { conn, server })
    }
}

/// What a primitive returns: a future of its result, that may cross threads.
pub(super) trait Fut<T>: Future<Output = Result<T, Error>> + Send {}

impl<T, F: Future<Output = Result<T, Error>> + Send> Fut<T> for F {}

/// What one kind of server does on a maintenance connection, for the flow
/// of this module. Names passed in are stowage's own (`names.rs`).
pub(super) trait Copying: Sync {
    /// The maintenance connection.
    type Conn: Connection;

    /// A maintenance connection to `server`.
    fn maintenance(server: &str) -> impl Fut<Maint<Self::Conn>>;

    /// Run `sql`; `what` says what could not be done if it fails.
    fn execute(m: &mut Maint<Self::Conn>, sql: String, what: &str) -> impl Fut<()>;

    /// Create database `name`, empty.
    fn create_database(m: &mut Maint<Self::Conn>, name: &str) -> impl Fut<()> {
        let sql = format!("CREATE DATABASE {name}");
        Self::execute(m, sql, "cannot create a test database")
    }

    /// [`TestServer::drop_database`].
    fn drop_database(m: &mut Maint<Self::Conn>, name: &str) -> impl Fut<()>;

    /// [`TestServer::inventory`].
    fn inventory(m: &mut Maint<Self::Conn>) -> impl Fut<Vec<Entry>>;

    /// [`TestServer::remove`], for a database of a name stowage makes.
    fn remove(m: &mut Maint<Self::Conn>, entry: &Entry) -> impl Fut<bool>;

    /// [`TestServer::keep`].
    fn keep(m: &mut Maint<Self::Conn>, name: &str) -> impl Fut<String>;

    /// [`TestServer::reset_pays`].
    fn reset_pays(_copied: Option<Duration>) -> bool {
        true
    }

    /// Take the lock named `key` for this session, until [`unlock`](Self::unlock)
    /// or the session's end: at once or not at all (`wait` `None`), or
    /// waiting up to `wait` (PostgreSQL waits as long as it takes). Whether
    /// it is taken.
    fn lock(m: &mut Maint<Self::Conn>, key: &str, wait: Option<Duration>) -> impl Fut<bool>;

    /// Release the lock named `key`.
    fn unlock(m: &mut Maint<Self::Conn>, key: &str) -> impl Fut<()>;

    /// Whether template `name` is complete.
    fn template_ready(m: &mut Maint<Self::Conn>, name: &str) -> impl Fut<bool>;

    /// Build template `name` from nothing (dropping what a crash left of
    /// it): create it, run `migrator` in it, and mark it complete.
    fn build_template(m: &mut Maint<Self::Conn>, name: &str, migrator: &Migrator) -> impl Fut<()>;

    /// Copy `template` into a new database `name`, marked a spare of
    /// `template` when `spare`, so that a marked spare is a complete one.
    fn copy(m: &mut Maint<Self::Conn>, template: &str, name: &str, spare: bool) -> impl Fut<()>;

    /// The name of a new spare of `template`.
    fn spare_name(template: &str) -> String;

    /// Claim a spare of `template` for the test that would get database
    /// `name`: the name of the database it gets, or `None` when no spare is
    /// left.
    fn claim(m: &mut Maint<Self::Conn>, template: &str, name: &str) -> impl Fut<Option<String>>;

    /// What a reset at the end needs to know, read as a test gets its
    /// database; `None`: no reset.
    fn since(m: &mut Maint<Self::Conn>) -> impl Future<Output = Option<String>> + Send;

    /// How many spares of `template` are ready.
    fn ready(m: &mut Maint<Self::Conn>, template: &str) -> impl Fut<usize>;

    /// Drop `spare` of `template`, unless a test has claimed it meanwhile.
    fn drop_spare(m: &mut Maint<Self::Conn>, template: &str, spare: &str) -> impl Fut<()>;

    /// End the finished test's sessions on database `name` and wait until
    /// they are gone; `false` when they are still there after a while.
    fn ended(m: &mut Maint<Self::Conn>, name: &str) -> impl Fut<bool>;

    /// Reset finished database `db`, its sessions gone, to its template's
    /// state and mark it a spare: its name as a spare, or `None`, nothing
    /// changed, when it cannot be reset (then the caller drops it).
    fn reset(m: &mut Maint<Self::Conn>, db: &Finished) -> impl Fut<Option<String>>;
}

/// Every server that copies a template makes and removes its test
/// databases with this module's flow.
impl<P: Copying + Send + 'static> TestServer for P {
    fn database_url(&self, server: &str, name: &str) -> Result<String, Error> {
        Ok(with_database(server, name))
    }

    fn create<'a>(
        &'a self,
        db: &'a mut TestDb,
        wanted: Wanted<'a>,
    ) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        Box::pin(create::<P>(db, wanted))
    }

    fn create_empty<'a>(&'a self, db: &'a mut TestDb) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut m = P::maintenance(&db.server).await?;
            db.created = true;
            P::create_database(&mut m, &db.name).await
        })
    }

    fn makes_spares(&self) -> bool {
        true
    }

    fn make_spare<'a>(
        &'a self,
        server: &'a str,
        template: &'a str,
        wanted: usize,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(make_spare::<P>(server, template, wanted))
    }

    fn reset_pays(&self, copied: Option<Duration>) -> bool {
        P::reset_pays(copied)
    }

    fn recycle<'a>(
        &'a self,
        db: &'a Finished,
        wanted: usize,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(recycle::<P>(db, wanted))
    }

    fn copy_template<'a>(
        &'a self,
        server: &'a str,
        template: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let mut m = P::maintenance(server).await?;
            if !P::template_ready(&mut m, template).await? {
                return Ok(false);
            }
            P::copy(&mut m, template, name, false).await?;
            Ok(true)
        })
    }

    fn drop_database<'a>(
        &'a self,
        server: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { P::drop_database(&mut P::maintenance(server).await?, name).await })
    }

    fn inventory<'a>(&'a self, server: &'a str) -> BoxFuture<'a, Result<Vec<Entry>, Error>> {
        Box::pin(async move { P::inventory(&mut P::maintenance(server).await?).await })
    }

    fn remove<'a>(
        &'a self,
        server: &'a str,
        entry: &'a Entry,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            if !plain_name(&entry.name) {
                return Ok(false);
            }
            P::remove(&mut P::maintenance(server).await?, entry).await
        })
    }

    fn keep<'a>(&'a self, server: &'a str, name: &'a str) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(async move { P::keep(&mut P::maintenance(server).await?, name).await })
    }
}

/// [`TestServer::create`] on `P`.
async fn create<P: Copying>(
    db: &mut TestDb,
    wanted: Wanted<'_>,
) -> Result<Option<Duration>, Error> {
    let Wanted {
        template,
        migrator,
        claim,
    } = wanted;
    // One maintenance connection makes sure of the template, then claims a
    // spare copy or makes one.
    let mut m = P::maintenance(&db.server).await?;
    ensure_template::<P>(&mut m, template, migrator).await?;
    db.created = true;
    let claimed = match claim {
        true => P::claim(&mut m, template, &db.name).await?,
        false => None,
    };
    let copied = match claimed {
        Some(name) => {
            db.url = with_database(&m.server, &name);
            db.name = name;
            None
        }
        None => {
            let started = Instant::now();
            P::copy(&mut m, template, &db.name, false).await?;
            Some(started.elapsed())
        }
    };
    // Without it the database is dropped at the end, not reset.
    db.since = P::since(&mut m).await;
    Ok(copied)
}

/// Build the template once, under a lock, unless it is ready.
async fn ensure_template<P: Copying>(
    m: &mut Maint<P::Conn>,
    name: &str,
    migrator: &Migrator,
) -> Result<(), Error> {
    if P::template_ready(m, name).await? {
        return Ok(());
    }
    // One process builds it; the others wait on the lock, then find it ready.
    let key = format!("stowage-template:{name}");
    if !P::lock(m, &key, Some(TEMPLATE_WAIT)).await? {
        return Err(Error::LockTimeout {
            waited: TEMPLATE_WAIT,
            holder: None,
        });
    }
    let result = async {
        if P::template_ready(m, name).await? {
            return Ok(());
        }
        P::build_template(m, name, migrator).await
    }
    .await;
    let _ = P::unlock(m, &key).await;
    result
}

/// [`TestServer::make_spare`] on `P`.
async fn make_spare<P: Copying>(server: &str, template: &str, wanted: usize) -> Result<(), Error> {
    let mut m = P::maintenance(server).await?;
    // A slot lock per spare being made bounds them to `wanted`; closing the
    // connection releases it.
    let mut taken = false;
    for slot in 0..wanted {
        let key = format!("stowage-spare:{template}:{slot}");
        if P::lock(&mut m, &key, None).await? {
            taken = true;
            break;
        }
    }
    if !taken || P::ready(&mut m, template).await? >= wanted {
        return Ok(());
    }
    let spare = P::spare_name(template);
    P::copy(&mut m, template, &spare, true).await?;
    trim::<P>(&mut m, template, &spare, wanted).await?;
    m.conn
        .close()
        .await
        .map_err(test_error("cannot disconnect", server))
}

/// [`TestServer::recycle`] on `P`.
async fn recycle<P: Copying>(db: &Finished, wanted: usize) -> Result<bool, Error> {
    if !plain_name(&db.name) || !plain_name(&db.template) {
        return Ok(false);
    }
    let mut m = P::maintenance(&db.server).await?;
    if P::ready(&mut m, &db.template).await? >= wanted || !P::ended(&mut m, &db.name).await? {
        return Ok(false);
    }
    let Some(spare) = P::reset(&mut m, db).await? else {
        return Ok(false);
    };
    trim::<P>(&mut m, &db.template, &spare, wanted).await?;
    let _ = m.conn.close().await;
    Ok(true)
}

/// Drop `spare` of `template`, just made ready, when more than `wanted`
/// spares are now ready. Several made at once (copies ahead, resets) each
/// counted fewer before they began; counted again one at a time, under a
/// lock, no more than `wanted` stay. One a test has claimed meanwhile
/// stays.
async fn trim<P: Copying>(
    m: &mut Maint<P::Conn>,
    template: &str,
    spare: &str,
    wanted: usize,
) -> Result<(), Error> {
    // Held until unlocked or the session ends (an error closes it).
    let key = format!("stowage-trim:{template}");
    if !P::lock(m, &key, Some(TRIM_WAIT)).await? {
        return Ok(());
    }
    if P::ready(m, template).await? > wanted {
        P::drop_spare(m, template, spare).await?;
    }
    P::unlock(m, &key).await
}
