//! `stowage::testing::TestDb` on every backend: migrated copies of a template,
//! isolated from each other, safe in parallel threads and processes, a new
//! template for a changed migration set, and kept databases for failing tests.

use std::process::{Child, Command, Stdio};
use stowage::Migrator;
use stowage::testing::{TestDb, cleanup};
use stowage_tests::{Backend, server_url};

static OBJECTS: Migrator = stowage::embed_migrations!("fixtures/objects");
static V1: Migrator = stowage::embed_migrations!("fixtures/apply/v1");
static V2: Migrator = stowage::embed_migrations!("fixtures/apply/v2");
/// Sets no other test uses, so that their spare copies are this file's alone.
static SPARES: Migrator = stowage::embed_migrations!("fixtures/spares");
static LONE: Migrator = stowage::embed_migrations!("fixtures/lone");
static CLAIMS: Migrator = stowage::embed_migrations!("fixtures/claims");
static BUSY: Migrator = stowage::embed_migrations!("fixtures/busy");
static HANDOFF: Migrator = stowage::embed_migrations!("fixtures/handoff");
static REUSE: Migrator = stowage::embed_migrations!("fixtures/reuse");
static TEMPLATE_REUSE: Migrator = stowage::embed_migrations!("fixtures/template_reuse");

const APP: &str = env!("CARGO_BIN_EXE_stowage-test-testdb");

fn server(backend: Backend) -> String {
    server_url(backend)
}

/// The helper binary as one test of a suite: `mode` against `backend`'s
/// server, its output captured. Start it with `.spawn()`, wait with
/// [`passed`], or run it to its end with `.output()`.
fn app(backend: Backend, mode: &str) -> Command {
    let mut command = Command::new(APP);
    command
        .args([server(backend).as_str(), mode])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// What a helper that passed printed: its test database's name (stdout),
/// and its stderr.
struct Passed {
    name: String,
    stderr: String,
}

/// Waits for a started helper and asserts that it passed.
fn passed(backend: Backend, test: Child) -> Passed {
    let out = test.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{backend:?}: {stderr}");
    Passed {
        name: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        stderr,
    }
}

/// Runs the helper's failing test: the name of the database it kept, and
/// its stderr.
fn fails_and_keeps(backend: Backend) -> (String, String) {
    let failing = app(backend, "fail").output().unwrap();
    assert!(!failing.status.success());
    let stderr = String::from_utf8_lossy(&failing.stderr).into_owned();
    let kept = stderr
        .lines()
        .find_map(|line| line.strip_prefix("stowage: kept the database of a failing test: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    (kept.split(' ').next().unwrap().to_owned(), stderr)
}

async fn scalar(pool: &sqlx::AnyPool, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn each_test_gets_a_migrated_database(backend: Backend) {
    sqlx::any::install_default_drivers();
    let db = TestDb::on(&server(backend), &OBJECTS).await.unwrap();
    assert!(db.name().starts_with("stowage_test_"));
    let pool: sqlx::AnyPool = db.pool().await.unwrap();
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM stowage_migrations WHERE state = 'applied'"
        )
        .await,
        2
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM parent_names WHERE name = 'seed'"
        )
        .await,
        1,
        "seed rows and views"
    );
    sqlx::query("INSERT INTO child VALUES (1, 1)")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM counts WHERE n = 1").await,
        1,
        "the trigger fired"
    );
    let orphan = sqlx::query("INSERT INTO child VALUES (2, 999)")
        .execute(&pool)
        .await;
    assert!(orphan.is_err(), "the foreign key holds");
    if backend == Backend::MySql {
        sqlx::query("CALL add_parent(7, 'from a procedure')")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(
            scalar(&pool, "SELECT COUNT(*) FROM parent WHERE id = 7").await,
            1,
            "routines are copied"
        );
    }
    // The migrated database reports itself up to date.
    assert!(OBJECTS.run(&pool).await.unwrap().applied().is_empty());
    pool.close().await;
}

async fn two_databases_do_not_see_each_other(backend: Backend) {
    sqlx::any::install_default_drivers();
    let (a, b) = (
        TestDb::on(&server(backend), &OBJECTS).await.unwrap(),
        TestDb::on(&server(backend), &OBJECTS).await.unwrap(),
    );
    assert_ne!(a.name(), b.name());
    for db in [&a, &b] {
        let pool: sqlx::AnyPool = db.pool().await.unwrap();
        sqlx::query("INSERT INTO parent VALUES (100, 'same row')")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(
            scalar(&pool, "SELECT COUNT(*) FROM parent").await,
            2,
            "the seed and this row only"
        );
        pool.close().await;
    }
}

async fn fifty_in_parallel_threads(backend: Backend) {
    sqlx::any::install_default_drivers();
    let server = server(backend);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let db = TestDb::on(&server, &OBJECTS).await.unwrap();
                let started = std::time::Instant::now();
                let pool: sqlx::AnyPool = db.pool().await.unwrap();
                sqlx::query("INSERT INTO parent VALUES (100, 'same row')")
                    .execute(&pool)
                    .await
                    .unwrap();
                let count = scalar(&pool, "SELECT COUNT(*) FROM parent").await;
                pool.close().await;
                // Held from `on` to here; reset for another test after.
                let held = (started, std::time::Instant::now());
                (db.name().to_owned(), held, count)
            })
        })
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        let (name, when, count) = task.await.unwrap();
        assert_eq!(
            count, 2,
            "the seed row and the test's own, on a fresh or reset database"
        );
        held.push((name, when));
    }
    // A database (a MySQL schema keeps its name when reset) is never two
    // tests' at once.
    for (i, (name, (from, to))) in held.iter().enumerate() {
        for (other, (other_from, other_to)) in &held[i + 1..] {
            assert!(
                name != other || to < other_from || other_to < from,
                "{backend:?}: two tests held {name} at once"
            );
        }
    }
}

async fn fifty_in_parallel_processes(backend: Backend) {
    let children: Vec<_> = (0..50)
        .map(|_| app(backend, "ok").spawn().unwrap())
        .collect();
    for child in children {
        passed(backend, child);
    }
}

async fn a_changed_set_gets_a_new_template(backend: Backend) {
    sqlx::any::install_default_drivers();
    let dialect = match backend {
        Backend::Postgres => stowage::Dialect::Postgres,
        Backend::MySql => stowage::Dialect::MySql,
        Backend::Sqlite => stowage::Dialect::Sqlite,
    };
    let (one, two) = (
        stowage::testing::template_name(&V1, dialect).unwrap(),
        stowage::testing::template_name(&V2, dialect).unwrap(),
    );
    assert_ne!(one, two);
    let db = TestDb::on(&server(backend), &V2).await.unwrap();
    let pool: sqlx::AnyPool = db.pool().await.unwrap();
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM stowage_migrations").await,
        4
    );
    pool.close().await;
    let db = TestDb::on(&server(backend), &V1).await.unwrap();
    let pool: sqlx::AnyPool = db.pool().await.unwrap();
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM stowage_migrations").await,
        3
    );
    pool.close().await;
}

async fn exists(backend: Backend, name: &str) -> bool {
    match backend {
        Backend::Sqlite => std::env::temp_dir()
            .join("stowage-testdb")
            .join(format!("{name}.db"))
            .exists(),
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server(backend)).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap()
                == 1
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(&server(backend)).await.unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
                == 1
        }
    }
}

async fn a_failing_test_keeps_its_database(backend: Backend) {
    let name = passed(backend, app(backend, "ok").spawn().unwrap()).name;
    assert!(
        !exists(backend, &name).await || spares(backend, &OBJECTS).await.contains(&name),
        "a passing test's database is dropped, or reset for the next test"
    );

    let (name, stderr) = fails_and_keeps(backend);
    let name = name.as_str();
    let made = name.replacen("stowage_kept_", "stowage_test_", 1);
    assert!(
        stderr.contains(&format!("a deliberate failure in {made}")),
        "{stderr}"
    );
    assert!(exists(backend, name).await, "{name} was kept");
    if backend != Backend::MySql {
        assert!(name.starts_with("stowage_kept_"), "{name}: renamed");
    }
    let kept = stowage::testing::kept_databases(&server(backend))
        .await
        .unwrap();
    assert!(kept.iter().any(|k| k == name), "{name} in {kept:?}");
    assert!(
        stderr.contains("STOWAGE_TEST_DROP_KEPT=1 cargo test"),
        "{stderr}"
    );

    // The next run's start lists it and leaves it, unless told to drop it.
    let said = passed(backend, app(backend, "ok").spawn().unwrap()).stderr;
    assert!(
        said.contains("kept by failing tests") && said.contains(name),
        "{said}"
    );
    assert!(exists(backend, name).await, "{name} stays");
    let told = app(backend, "ok")
        .env("STOWAGE_TEST_DROP_KEPT", "1")
        .spawn()
        .unwrap();
    passed(backend, told);
    assert!(!exists(backend, name).await, "{name} dropped when told");

    // cleanup sweeps a kept one too, once it is old enough.
    let (name, _) = fails_and_keeps(backend);
    let name = name.as_str();
    assert!(exists(backend, name).await, "{name} was kept");
    assert!(
        cleanup(&server(backend), std::time::Duration::from_secs(3600))
            .await
            .is_ok()
    );
    assert!(exists(backend, name).await, "not older than an hour");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let dropped = cleanup(&server(backend), std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert!(dropped >= 1);
    assert!(!exists(backend, name).await, "{name} was swept");
}

/// `expected_schema` at the head reads a copy of the test-database
/// template when the server has one: a table added to the template by hand
/// shows in it, and not at the head's version (built from nothing); the
/// template is left as it was.
async fn the_expected_schema_copies_a_template(backend: Backend) {
    let server = server(backend);
    drop(TestDb::on(&server, &TEMPLATE_REUSE).await.unwrap());
    let template = stowage::testing::template_name(&TEMPLATE_REUSE, dialect(backend)).unwrap();
    let template_url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            std::env::temp_dir()
                .join("stowage-testdb")
                .join(format!("{template}.db"))
                .display()
        ),
        _ => stowage_tests::with_database(&server, &template),
    };
    let connections = |allow: bool| {
        if backend == Backend::Postgres {
            let sql = format!("ALTER DATABASE {template} WITH ALLOW_CONNECTIONS {allow}");
            stowage_tests::native::client(backend, &server, &sql);
        }
    };
    connections(true);
    stowage_tests::native::client(
        backend,
        &template_url,
        "CREATE TABLE hand_made (id integer)",
    );
    connections(false);
    let head = TEMPLATE_REUSE
        .expected_schema(&server, stowage::Target::Head)
        .await;
    let built = TEMPLATE_REUSE
        .expected_schema(&server, stowage::Target::Version(1))
        .await;
    connections(true);
    stowage_tests::native::client(backend, &template_url, "DROP TABLE hand_made");
    connections(false);
    let (head, built) = (head.unwrap(), built.unwrap());
    let has = |schema: &stowage::Schema, name: &str| {
        schema
            .objects()
            .iter()
            .any(|o| o.kind == stowage::ObjectKind::Table && o.name.ends_with(name))
    };
    assert!(has(&head, "hand_made"), "{head:?}");
    assert!(has(&head, "things") && has(&built, "things"), "{built:?}");
    assert!(!has(&built, "hand_made"), "{built:?}");
}

stowage_tests::on_every_backend!(
    multi_thread:
    the_expected_schema_copies_a_template,
    each_test_gets_a_migrated_database,
    two_databases_do_not_see_each_other,
    fifty_in_parallel_threads,
    fifty_in_parallel_processes,
    a_changed_set_gets_a_new_template,
    a_failing_test_keeps_its_database,
    leftovers_are_swept_at_the_next_start,
    three_runs_leave_no_more_than_one,
);

fn dialect(backend: Backend) -> stowage::Dialect {
    match backend {
        Backend::Postgres => stowage::Dialect::Postgres,
        Backend::MySql => stowage::Dialect::MySql,
        Backend::Sqlite => stowage::Dialect::Sqlite,
    }
}

/// The spare copies of `migrator`'s template ready on the server: PostgreSQL
/// databases named `stowage_test_…_spare_<head>`, MySQL schemas holding the
/// table `stowage_spare_<head>`.
async fn spares(backend: Backend, migrator: &Migrator) -> Vec<String> {
    let template = stowage::testing::template_name(migrator, dialect(backend)).unwrap();
    let head = template.rsplit('_').next().unwrap();
    let mut names: Vec<String> = match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server(backend)).await.unwrap();
            sqlx::query_scalar(
                "SELECT datname::text FROM pg_database WHERE datname LIKE 'stowage\\_test\\_%' AND datname LIKE $1",
            )
            .bind(format!("%\\_spare\\_{}", &head[..12]))
            .fetch_all(&pool)
            .await
            .unwrap()
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(&server(backend)).await.unwrap();
            sqlx::query_scalar(
                "SELECT CAST(TABLE_SCHEMA AS CHAR) FROM information_schema.TABLES WHERE TABLE_NAME = ?",
            )
            .bind(format!("stowage_spare_{head}"))
            .fetch_all(&pool)
            .await
            .unwrap()
        }
        Backend::Sqlite => Vec::new(),
    };
    names.sort();
    names
}

/// The spares of `migrator`'s template once there are `count`: a test
/// does not wait for the spare it started, so the test waits to see it.
async fn spares_once(backend: Backend, migrator: &Migrator, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = spares(backend, migrator).await;
        if found.len() >= count || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Drop the spares of `migrator`'s template left by earlier runs.
async fn drop_spares(backend: Backend, migrator: &Migrator) {
    for spare in spares(backend, migrator).await {
        drop_spare(backend, &spare).await;
    }
}

async fn drop_spare(backend: Backend, spare: &str) {
    let sql = format!("DROP DATABASE IF EXISTS {spare}");
    match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server(backend)).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        _ => {
            let pool = sqlx::MySqlPool::connect(&server(backend)).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

/// The PostgreSQL OID of a database (a rename keeps it).
async fn oid(name: &str) -> Option<i64> {
    let pool = sqlx::PgPool::connect(&server(Backend::Postgres))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT oid::bigint FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&pool)
        .await
        .unwrap()
}

/// A test's database is made ahead, while an earlier test runs, and claimed
/// whole: migrated, with its seed rows, without the spare's mark. (With
/// spares on: `STOWAGE_TEST_SPARES` unset or above 0.)
async fn a_spare_is_made_ahead_and_claimed(backend: Backend) {
    sqlx::any::install_default_drivers();
    // Ahead after any copy (by default, only slow ones).
    stowage::testing::harness::copy_ahead_after(std::time::Duration::ZERO);
    drop_spares(backend, &SPARES).await;
    let first = TestDb::on(&server(backend), &SPARES).await.unwrap();
    let first_id = identity(backend, first.name()).await;
    drop(first);
    // The finished database may be a spare too (reset); the one made ahead
    // is another.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let before = loop {
        let mut ahead = Vec::new();
        for spare in spares(backend, &SPARES).await {
            if identity(backend, &spare).await != first_id {
                ahead.push(spare);
            }
        }
        if !ahead.is_empty() || std::time::Instant::now() > deadline {
            break ahead;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        before.len(),
        1,
        "{backend:?}: a spare was made while the first test ran"
    );
    // Claims take any spare: only the one made ahead is left to take.
    for spare in spares(backend, &SPARES).await {
        if !before.contains(&spare) {
            drop_spare(backend, &spare).await;
        }
    }
    let spare_oid = match backend {
        Backend::Postgres => oid(&before[0]).await,
        _ => None,
    };
    let second = TestDb::on(&server(backend), &SPARES).await.unwrap();
    match backend {
        // Renamed to a test database of the claimer's own name.
        Backend::Postgres => {
            assert!(!second.name().contains("_spare_"), "{}", second.name());
            assert_eq!(oid(second.name()).await, spare_oid, "the spare itself");
            assert!(!exists(backend, &before[0]).await);
        }
        // The mark dropped; the schema is the test's.
        _ => {
            assert_eq!(second.name(), before[0]);
            assert!(!spares(backend, &SPARES).await.contains(&before[0]));
        }
    }
    assert!(exists(backend, second.name()).await);
    let pool: sqlx::AnyPool = second.pool().await.unwrap();
    assert_eq!(scalar(&pool, "SELECT COUNT(*) FROM spare_seed").await, 1);
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM stowage_migrations WHERE state = 'applied'"
        )
        .await,
        1
    );
    let tables = match backend {
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
        }
        _ => "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    };
    assert_eq!(
        scalar(&pool, tables).await,
        2,
        "the seed table and the history, no mark"
    );
    pool.close().await;
}

/// `cleanup` sweeps spares that are old and unclaimed, but dates a claimed
/// one by its claim: on MySQL it keeps the name, and so the date, it was made
/// with.
async fn cleanup_dates_a_claimed_spare_by_its_claim(backend: Backend) {
    let second = std::time::Duration::from_secs(1);
    let over_a_second = std::time::Duration::from_millis(2100);
    // Spares here come only from resets: none made ahead after a copy slow
    // on a loaded machine. Where databases are not reset (PostgreSQL 14),
    // only from copies made ahead.
    let resets = resets(backend).await;
    stowage::testing::harness::copy_ahead_after(if resets {
        std::time::Duration::from_secs(3600)
    } else {
        std::time::Duration::ZERO
    });
    stowage::testing::harness::reset_after(std::time::Duration::ZERO);
    drop_spares(backend, &CLAIMS).await;
    drop(TestDb::on(&server(backend), &CLAIMS).await.unwrap());
    let made = spares_once(backend, &CLAIMS, 1).await;
    assert_eq!(made.len(), 1, "{backend:?}");
    tokio::time::sleep(over_a_second).await;
    let claimed = TestDb::on(&server(backend), &CLAIMS).await.unwrap();
    // No session on it: only its date protects it.
    cleanup(&server(backend), second).await.unwrap();
    assert!(
        exists(backend, claimed.name()).await,
        "{backend:?}: {} was claimed just now",
        claimed.name()
    );
    if !resets {
        let name = claimed.name().to_owned();
        drop(claimed);
        assert!(
            !exists(backend, &name).await,
            "{backend:?}: {name} was dropped"
        );
        return;
    }
    // Reset for the next test, and once old and unclaimed, swept. (A reset
    // PostgreSQL database is renamed; a MySQL schema keeps its name, and
    // the date in it.)
    drop(claimed);
    let unclaimed = spares_once(backend, &CLAIMS, 1).await;
    assert_eq!(unclaimed.len(), 1, "{backend:?}");
    assert_eq!(made.contains(&unclaimed[0]), backend == Backend::MySql);
    tokio::time::sleep(over_a_second).await;
    cleanup(&server(backend), second).await.unwrap();
    assert!(
        !exists(backend, &unclaimed[0]).await,
        "{backend:?}: {} was swept",
        unclaimed[0]
    );
}

fn base36(mut value: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

/// Create database `name` as a leftover would be: on PostgreSQL a template
/// if it is named as one, on MySQL with a spare's mark if given, on SQLite
/// a file.
async fn leave(backend: Backend, name: &str, mark: Option<&str>) {
    let sql = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("stowage-testdb");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.db")), b"").unwrap();
            return;
        }
        Backend::Postgres if name.starts_with("stowage_tpl_") => vec![
            format!("CREATE DATABASE {name}"),
            format!("ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
        ],
        Backend::MySql if mark.is_some() => vec![
            format!("CREATE DATABASE {name}"),
            format!(
                "CREATE TABLE {name}.{} (spare INT)",
                mark.unwrap_or_default()
            ),
        ],
        _ => vec![format!("CREATE DATABASE {name}")],
    };
    let admin = sqlx::AnyPool::connect(&server(backend)).await.unwrap();
    for sql in sql {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    admin.close().await;
}

/// The next run's first test database drops this project's leftovers: the
/// template of the same folder's earlier set, a spare of a set with no
/// template, the database of a process that is gone. Another project's
/// databases, and a live process's, stay.
async fn leftovers_are_swept_at_the_next_start(backend: Backend) {
    sqlx::any::install_default_drivers();
    let template = stowage::testing::template_name(&OBJECTS, dialect(backend)).unwrap();
    let mut parts = template.strip_prefix("stowage_tpl_").unwrap().split('_');
    let (project, lineage) = (parts.next().unwrap(), parts.next().unwrap());
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = base36(u64::from(gone.id()));
    gone.wait().unwrap();
    let now = base36(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let other = if project == "zzzzzz" {
        "yyyyyy"
    } else {
        "zzzzzz"
    };
    let mine = base36(u64::from(std::process::id()));
    let older = format!("stowage_tpl_{project}_{lineage}_{}", "0".repeat(24));
    let dead_test = format!("stowage_test_{project}_{now}_{dead}_1");
    let theirs = format!("stowage_test_{other}_{now}_{dead}_2");
    let live = format!("stowage_test_{project}_{now}_{mine}_999999");
    let orphan_spare = match backend {
        Backend::MySql => format!("stowage_test_{project}_{now}_{dead}_3"),
        _ => format!("stowage_test_{project}_{now}_{dead}_3_spare_ffffffffffff"),
    };
    leave(backend, &older, None).await;
    leave(backend, &dead_test, None).await;
    leave(backend, &theirs, None).await;
    leave(backend, &live, None).await;
    let mark = format!("stowage_spare_{}", "f".repeat(24));
    leave(backend, &orphan_spare, Some(&mark)).await;

    passed(backend, app(backend, "ok").spawn().unwrap());
    for name in [&older, &dead_test, &orphan_spare] {
        assert!(
            !exists(backend, name).await,
            "{backend:?}: {name} was swept"
        );
    }
    for name in [&theirs, &live] {
        assert!(exists(backend, name).await, "{backend:?}: {name} stays");
        match backend {
            Backend::Sqlite => {
                let file = std::env::temp_dir().join(format!("stowage-testdb/{name}.db"));
                std::fs::remove_file(file).unwrap();
            }
            _ => {
                let admin = sqlx::AnyPool::connect(&server(backend)).await.unwrap();
                let sql = format!("DROP DATABASE {name}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
            }
        }
    }
}

/// What a database of the `reuse` set holds: each table's rows, in order.
async fn contents(pool: &sqlx::AnyPool) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT CAST(id AS CHAR(20)) || ':' || name FROM kinds ORDER BY id",
        "SELECT CAST(id AS CHAR(20)) || ':' || name FROM items ORDER BY id",
        "SELECT CAST(id AS CHAR(20)) || ':' || body FROM notes ORDER BY id",
    ] {
        let sql = match pool.connect_options().database_url.scheme() {
            "mysql" => sql
                .replace("CAST(id AS CHAR(20)) || ':' || ", "CONCAT(id, ':', ")
                .replace(" FROM", ") FROM"),
            _ => sql.to_owned(),
        };
        let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap();
        rows.push(found.join(","));
    }
    rows
}

/// What identifies a database across a reset: its PostgreSQL oid (it is
/// renamed), its MySQL schema's name (it cannot be).
async fn identity(backend: Backend, name: &str) -> Option<String> {
    match backend {
        Backend::Postgres => oid(name).await.map(|oid| oid.to_string()),
        _ => exists(backend, name).await.then(|| name.to_owned()),
    }
}

/// The spares of `migrator`'s template, by identity.
/// How many PostgreSQL databases have the object id `oid` (0: it is gone).
async fn oid_gone(oid: &str) -> i64 {
    let pool = sqlx::PgPool::connect(&server(Backend::Postgres))
        .await
        .unwrap();
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE oid::text = $1")
        .bind(oid)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

/// Whether a finished test's database is reset for the next test: on
/// MySQL, and on PostgreSQL from version 15 (whose row statistics say what
/// a session wrote); on PostgreSQL 14 it is dropped, as the README says.
async fn resets(backend: Backend) -> bool {
    match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server(backend)).await.unwrap();
            let version: i32 =
                sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            version >= 150_000
        }
        Backend::MySql => true,
        Backend::Sqlite => false,
    }
}

async fn spare_identities(backend: Backend, migrator: &Migrator) -> Vec<String> {
    let mut found = Vec::new();
    for spare in spares(backend, migrator).await {
        found.extend(identity(backend, &spare).await);
    }
    found
}

/// Insert two items and a note, and a kind of its own; the items' ids.
async fn write_a_little(pool: &sqlx::AnyPool) -> Vec<i64> {
    for sql in [
        "INSERT INTO items (kind_id, name) VALUES (1, 'first')",
        "INSERT INTO items (kind_id, name) VALUES (2, 'second')",
        "INSERT INTO kinds VALUES (3, 'new kind')",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM items ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let note = format!(
        "INSERT INTO notes (item_id, body) VALUES ({}, 'a note')",
        ids[0]
    );
    sqlx::query(sqlx::AssertSqlSafe(note))
        .execute(pool)
        .await
        .unwrap();
    ids
}

/// A finished test's database is reset to the template's state and handed
/// to the next test (the same database, by identity): the rows it wrote
/// gone, the template's rows there, the ids counting from where the template
/// left them. One whose definitions changed is dropped instead, and so, on
/// PostgreSQL, is one where a template row was changed.
async fn a_finished_database_is_reset_for_the_next_test(backend: Backend) {
    sqlx::any::install_default_drivers();
    // Spares here come only from resets.
    stowage::testing::harness::copy_ahead_after(std::time::Duration::from_secs(3600));
    // MySQL resets only where copies are slow; these copies are not.
    stowage::testing::harness::reset_after(std::time::Duration::ZERO);
    drop_spares(backend, &REUSE).await;
    let first = TestDb::on(&server(backend), &REUSE).await.unwrap();
    let first_id = identity(backend, first.name()).await.unwrap();
    let pool: sqlx::AnyPool = first.pool().await.unwrap();
    let fresh = contents(&pool).await;
    assert_eq!(fresh, ["1:book,2:pen", "", ""]);
    assert_eq!(write_a_little(&pool).await, [1, 2]);
    if backend == Backend::Postgres {
        assert_eq!(scalar(&pool, "SELECT nextval('tickets')").await, 1);
    }
    assert_ne!(contents(&pool).await, fresh);
    pool.close().await;
    drop(first);
    if !resets(backend).await {
        assert!(spares(backend, &REUSE).await.is_empty(), "{backend:?}");
        assert_eq!(
            oid_gone(&first_id).await,
            0,
            "dropped: this server cannot reset it"
        );
        return;
    }
    assert_eq!(
        spare_identities(backend, &REUSE).await,
        std::slice::from_ref(&first_id),
        "{backend:?}: the finished database is the one spare"
    );

    let second = TestDb::on(&server(backend), &REUSE).await.unwrap();
    assert_eq!(identity(backend, second.name()).await.unwrap(), first_id);
    assert!(spares(backend, &REUSE).await.is_empty(), "claimed");
    let pool: sqlx::AnyPool = second.pool().await.unwrap();
    assert_eq!(
        contents(&pool).await,
        fresh,
        "{backend:?}: as the template had it"
    );
    assert_eq!(write_a_little(&pool).await, [1, 2], "ids start over");
    if backend == Backend::Postgres {
        assert_eq!(scalar(&pool, "SELECT nextval('tickets')").await, 1);
    }
    // DDL: the database is dropped, not reset.
    sqlx::query("CREATE TABLE extra (id INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    drop(second);
    assert!(spares(backend, &REUSE).await.is_empty(), "{backend:?}");
    assert_eq!(
        identity(backend, &first_id)
            .await
            .filter(|_| backend != Backend::Postgres),
        None
    );
    if backend == Backend::Postgres {
        assert_eq!(oid_gone(&first_id).await, 0, "dropped after DDL");
    }

    // A template row changed.
    let third = TestDb::on(&server(backend), &REUSE).await.unwrap();
    let third_id = identity(backend, third.name()).await.unwrap();
    let pool: sqlx::AnyPool = third.pool().await.unwrap();
    sqlx::query("UPDATE kinds SET name = 'changed' WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    drop(third);
    match backend {
        // Where the template's rows cannot be read back from: dropped.
        Backend::Postgres => assert!(spares(backend, &REUSE).await.is_empty()),
        // MySQL copies them back from the template.
        _ => {
            assert_eq!(spare_identities(backend, &REUSE).await, [third_id]);
            let fourth = TestDb::on(&server(backend), &REUSE).await.unwrap();
            let pool: sqlx::AnyPool = fourth.pool().await.unwrap();
            assert_eq!(contents(&pool).await, fresh);
            pool.close().await;
        }
    }
}

static EVOLVING_V1: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/fixtures/evolving/v1");
static EVOLVING_V2: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/fixtures/evolving/v2");

/// One run of a suite of four tests, two at a time, each in a process of
/// its own, of the `evolving` folder at `version`, for the project at
/// `project` (the tag in every name hashes it): the names the tests had.
fn suite_run(backend: Backend, project: &std::path::Path, version: &str) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..2 {
        let tests: Vec<_> = (0..2)
            .map(|_| {
                app(backend, &format!("evolving-{version}"))
                    .env("CARGO_MANIFEST_DIR", project)
                    .env("STOWAGE_TEST_SPARES", "2")
                    .spawn()
                    .unwrap()
            })
            .collect();
        for test in tests {
            names.push(passed(backend, test).name);
        }
    }
    names
}

/// Every database (SQLite: file) of project `tag`, sorted.
async fn project_databases(backend: Backend, tag: &str) -> Vec<String> {
    let mut names: Vec<String> = match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server(backend)).await.unwrap();
            sqlx::query_scalar("SELECT datname::text FROM pg_database")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(&server(backend)).await.unwrap();
            sqlx::query_scalar("SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
        Backend::Sqlite => std::fs::read_dir(std::env::temp_dir().join("stowage-testdb"))
            .unwrap()
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some(name.strip_suffix(".db")?.to_owned())
            })
            .collect(),
    };
    names.retain(|name| {
        ["stowage_tpl_", "stowage_test_", "stowage_kept_"]
            .iter()
            .any(|prefix| name.starts_with(&format!("{prefix}{tag}_")))
    });
    names.sort();
    names
}

/// A test's three runs of its suite, the last after a migration was added
/// to the folder, leave no more of the project's databases than one run
/// did, and nothing of the earlier set: its template and spares are swept
/// at the start of the run that replaces it. Spares here are made ahead
/// after any copy, and every finished database is reset when it can be.
async fn three_runs_leave_no_more_than_one(backend: Backend) {
    sqlx::any::install_default_drivers();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // A project of its own: the count is of this test's databases only.
    let project = std::env::temp_dir().join(format!("stowage-three-runs-{nanos}"));
    let set = |dir: &include_dir::Dir<'_>| {
        let migrator = Migrator::from_dir(dir).unwrap();
        let template = stowage::testing::template_name(&migrator, dialect(backend)).unwrap();
        (migrator, template.rsplit('_').next().unwrap().to_owned())
    };
    let (v1, v1_set) = set(&EVOLVING_V1);
    let (_, v2_set) = set(&EVOLVING_V2);
    assert_ne!(v1_set, v2_set);

    let first = suite_run(backend, &project, "v1");
    let tag = first[0].split('_').nth(2).unwrap().to_owned();
    let one = project_databases(backend, &tag).await;
    // The template and, at most, the two spares STOWAGE_TEST_SPARES asks
    // for: none beyond them, however many were made at once.
    assert!(one.len() <= 3, "{backend:?}: {one:?}");
    let templates = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|name| name.starts_with("stowage_tpl_"))
            .cloned()
            .collect()
    };
    assert_eq!(templates(&one).len(), 1, "{backend:?}: {one:?}");
    assert!(templates(&one)[0].ends_with(&v1_set), "{one:?}");
    if resets(backend).await {
        assert!(
            !spares(backend, &v1).await.is_empty(),
            "{backend:?}: one run left spares: {one:?}"
        );
    }

    suite_run(backend, &project, "v1");
    let two = project_databases(backend, &tag).await;
    assert!(
        two.len() <= one.len(),
        "{backend:?}: after one run {one:?}, after two {two:?}"
    );

    suite_run(backend, &project, "v2");
    let three = project_databases(backend, &tag).await;
    assert!(
        three.len() <= one.len(),
        "{backend:?}: after one run {one:?}, after three {three:?}"
    );
    assert_eq!(templates(&three).len(), 1, "{backend:?}: {three:?}");
    assert!(templates(&three)[0].ends_with(&v2_set), "{three:?}");
    assert!(
        !three.iter().any(|name| name.contains(&v1_set[..12])),
        "{backend:?}: nothing of the first set is left: {three:?}"
    );
    assert!(spares(backend, &v1).await.is_empty(), "{backend:?}");

    // Leave the server as it was.
    for name in three {
        match backend {
            Backend::Sqlite => {
                let file = std::env::temp_dir().join(format!("stowage-testdb/{name}.db"));
                std::fs::remove_file(file).unwrap();
            }
            _ => {
                if backend == Backend::Postgres {
                    let sql = format!("ALTER DATABASE {name} IS_TEMPLATE false");
                    let admin = sqlx::PgPool::connect(&server(backend)).await.unwrap();
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&admin)
                        .await
                        .unwrap();
                    admin.close().await;
                }
                drop_spare(backend, &name).await;
            }
        }
    }
    assert!(project_databases(backend, &tag).await.is_empty());
}

/// Spares are made on PostgreSQL and MySQL only.
macro_rules! on_servers {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    super::$scenario(stowage_tests::Backend::Postgres).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn mysql() {
                    super::$scenario(stowage_tests::Backend::MySql).await;
                }
            }
        )*
    };
}

on_servers!(
    a_finished_database_is_reset_for_the_next_test,
    a_spare_is_made_ahead_and_claimed,
    cleanup_dates_a_claimed_spare_by_its_claim,
);

/// `STOWAGE_TEST_SPARES=0` makes no spares; a value that is not a number is
/// refused with the variable's name, before anything is created.
#[tokio::test]
async fn spares_can_be_turned_off_and_a_bad_count_is_refused() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let off = app(backend, "lone")
            .env("STOWAGE_TEST_SPARES", "0")
            .spawn()
            .unwrap();
        passed(backend, off);
        assert_eq!(
            spares(backend, &LONE).await,
            Vec::<String>::new(),
            "{backend:?}"
        );

        let bad = app(backend, "lone")
            .env("STOWAGE_TEST_SPARES", "lots")
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(
            stderr.contains("STOWAGE_TEST_SPARES") && stderr.contains("\"lots\""),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A user who may not create databases gets an error that says what to grant.
#[tokio::test]
async fn no_permission_to_create_databases_says_what_to_do() {
    let admin = server(Backend::Postgres);
    let role = format!("stowage_nocreate_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN NOCREATEDB"
    )))
    .execute(&pool)
    .await
    .unwrap();
    // The same server, as that role (the throwaway servers trust local logins).
    let at = admin.find('@').unwrap();
    let scheme_end = admin.find("://").unwrap() + 3;
    let as_role = format!("{}{role}{}", &admin[..scheme_end], &admin[at..]);
    let error = TestDb::on(&as_role, &OBJECTS).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("CREATEDB"), "{message}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&pool)
        .await
        .unwrap();
}

/// A test that takes a `PgPool` without a server URL in the environment
/// says which variable to set, instead of connecting to a SQLite file as
/// PostgreSQL; with one, it runs.
#[test]
fn a_pg_pool_test_without_a_server_says_what_to_set() {
    let output = Command::new(APP)
        .args(["-", "pg-pool"])
        .env_remove("STOWAGE_TEST_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(101), "{stderr}");
    assert!(
        stderr.contains(
            "this test takes a postgres pool, but with neither \
                         STOWAGE_TEST_DATABASE_URL nor DATABASE_URL set, tests get a sqlite \
                         database; set STOWAGE_TEST_DATABASE_URL to the URL of a PostgreSQL server"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("#[stowage::test(server = \"ENV_VAR\")]"),
        "the way out for a suite of two kinds of server: {stderr}"
    );
    let with_server = Command::new(APP)
        .args(["-", "pg-pool"])
        .env("STOWAGE_TEST_DATABASE_URL", server(Backend::Postgres))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    passed(Backend::Postgres, with_server);
}

/// In a suite whose server is PostgreSQL, a test that takes a `SqlitePool`
/// runs on a SQLite file instead of failing.
#[test]
fn a_sqlite_pool_test_gets_sqlite_whatever_the_server() {
    let output = Command::new(APP)
        .args(["-", "sqlite-pool"])
        .env("STOWAGE_TEST_DATABASE_URL", server(Backend::Postgres))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("sqlite 3."), "{stdout}");
}

/// A server that is not there: after waiting for it, an error that names the
/// server (without its password) and says what to check.
#[tokio::test]
async fn an_unreachable_server_says_what_to_check() {
    let port = stowage_tests::free_port();
    let server = format!("postgres://app:hunter2secret@127.0.0.1:{port}/app");
    let started = std::time::Instant::now();
    let error = TestDb::on(&server, &OBJECTS).await.unwrap_err();
    // It waits for the server once (10 s), not again to drop what it never made.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(message.contains("app:***@127.0.0.1"), "{message}");
    assert!(
        message.contains("check that the server is running"),
        "{message}"
    );
    assert!(!message.contains("hunter2secret"), "{message}");
}

/// A session connected to the PostgreSQL template makes copying it
/// impossible: after waiting for it to leave, an error that says so.
#[tokio::test]
async fn a_busy_template_says_what_is_wrong() {
    // No spare is made ahead, so the only spare is the finished test's
    // database, reset before its drop returns: once it and any left by
    // earlier runs are gone, the next test must copy the template.
    stowage::testing::harness::copy_ahead_after(std::time::Duration::from_secs(3600));
    let server = server(Backend::Postgres);
    drop(TestDb::on(&server, &BUSY).await.unwrap());
    drop_spares(Backend::Postgres, &BUSY).await;
    let template = stowage::testing::template_name(&BUSY, stowage::Dialect::Postgres).unwrap();
    let admin = sqlx::PgPool::connect(&server).await.unwrap();
    let allow = |yes: bool| format!("ALTER DATABASE {template} ALLOW_CONNECTIONS {yes}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow(true)))
        .execute(&admin)
        .await
        .unwrap();
    let mut session = <sqlx::PgConnection as sqlx::Connection>::connect(
        &stowage_tests::with_database(&server, &template),
    )
    .await
    .unwrap();
    let copied = TestDb::on(&server, &BUSY).await;
    sqlx::Executor::execute(&mut session, "SELECT 1")
        .await
        .unwrap();
    sqlx::Connection::close(session).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow(false)))
        .execute(&admin)
        .await
        .unwrap();
    let message = copied.unwrap_err().to_string();
    assert!(message.contains(&template), "{message}");
    assert!(
        message.contains("is a session connected to it?"),
        "{message}"
    );
}

/// A test's drop waits for its database's reset. On a multi-thread
/// runtime's worker, the worker's other tasks go on meanwhile: here the
/// runtime has one worker, and its other task is the one that lets the
/// reset finish (it holds the lock the reset's count of spares takes).
#[test]
fn a_drop_on_a_runtime_worker_lets_its_other_tasks_run() {
    // The only spare work is the reset (no copy made ahead to wait for).
    stowage::testing::harness::copy_ahead_after(std::time::Duration::from_secs(3600));
    let server = server(Backend::Postgres);
    let template = stowage::testing::template_name(&HANDOFF, stowage::Dialect::Postgres).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (db, mut holder) = runtime.block_on(async {
        // Claims a spare an earlier run left, if any: none is ready at the drop.
        let db = TestDb::on(&server, &HANDOFF).await.unwrap();
        let mut holder = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
            .await
            .unwrap();
        sqlx::query("SELECT pg_advisory_lock(hashtext('stowage-trim:' || $1))")
            .bind(&template)
            .execute(&mut holder)
            .await
            .unwrap();
        (db, holder)
    });
    let (done, finished) = std::sync::mpsc::channel();
    let dropped = done.clone();
    runtime.spawn(async move {
        drop(db);
        dropped.send("drop").unwrap();
    });
    runtime.spawn(async move {
        // Until the drop's reset waits for the lock (or a minute).
        let waiting = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                       AND NOT granted AND objsubid = 1 \
                       AND objid = oid(hashtext('stowage-trim:' || $1)::bigint & 4294967295))";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut seen = false;
        while !seen && std::time::Instant::now() < deadline {
            seen = sqlx::query_scalar(waiting)
                .bind(&template)
                .fetch_one(&mut holder)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Said before the unlock: the drop cannot end before it.
        done.send(if seen { "waiter" } else { "no waiter" })
            .unwrap();
        sqlx::query("SELECT pg_advisory_unlock(hashtext('stowage-trim:' || $1))")
            .bind(&template)
            .execute(&mut holder)
            .await
            .unwrap();
    });
    let mut ended = Vec::new();
    for _ in 0..2 {
        match finished.recv_timeout(std::time::Duration::from_secs(90)) {
            Ok(what) => ended.push(what),
            Err(_) => break,
        }
    }
    runtime.shutdown_background();
    assert_eq!(
        ended,
        ["waiter", "drop"],
        "the drop's reset waited for the lock while the other task ran, then finished"
    );
}
