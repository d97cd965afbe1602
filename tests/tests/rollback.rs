//! Rolling a deployment back: an older binary on a database a newer one
//! migrated undoes what it lacks from the down SQL the history keeps, on
//! every backend, through the application's own `migrate` command line (an
//! `AnyPool` from `DATABASE_URL`, as the one-shot job runs it).
//!
//! The older and the newer binary are one application (`stowage-test-cli`)
//! embedding `fixtures/rollback/older` (migrations 1–2) or
//! `fixtures/rollback/newer` (1–3, 3 with a down SQL naming its table by a
//! placeholder); `newer_no_down` is 3 without a down SQL, and
//! `newer_compatible` 3 without one, marked `-- stowage:compatible`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stowage_tests::{Backend, Fresh, fresh, native};

const APP: &str = env!("CARGO_BIN_EXE_stowage-test-cli");

/// The application embedding `set`, run with `args` on `db`: exit code,
/// stdout, stderr.
fn app(set: &str, db: &Fresh, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(APP)
        .args(["migrate"])
        .args(args)
        .env("STOWAGE_TEST_SET", set)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("the test application runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `app`, which must exit 0: its stdout.
fn ok(set: &str, db: &Fresh, args: &[&str]) -> String {
    let (code, stdout, stderr) = app(set, db, args);
    assert_eq!(code, 0, "{set} {args:?}: {stdout}{stderr}");
    stdout
}

/// The schema as the server's own dump tool prints it.
fn dump(db: &Fresh) -> String {
    native::dump(db.backend, &db.url, &[]).unwrap_or_else(|| {
        panic!("pg_dump is older than the server: install the server's version of pg_dump")
    })
}

async fn the_older_binary_undoes_what_it_lacks(backend: Backend) {
    let db = fresh(backend, "rollback").await;
    let older_only = fresh(backend, "rollback-oracle").await;
    ok("older", &older_only, &["up"]);

    let stdout = ok("newer", &db, &["up"]);
    assert!(stdout.contains("applied 3 migrations"), "{stdout}");

    // The older binary sees 3 as missing, and that it can undo it.
    let status = ok("older", &db, &["status"]);
    let line = status
        .lines()
        .find(|l| l.contains("add tags"))
        .unwrap_or_default();
    assert!(line.contains("missing"), "{status}");
    assert!(line.contains("its kept down SQL can undo it"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&ok("older", &db, &["--json", "status"])).unwrap();
    let missing = &json["migrations"][2];
    assert_eq!(missing["version"], 3, "{json}");
    assert_eq!(missing["state"], "missing", "{json}");
    assert_eq!(missing["undoable"], true, "{json}");
    assert_eq!(json["migrations"][1]["undoable"], false, "{json}");

    // It refuses to start, naming the command it can run.
    let (code, _, stderr) = app("older", &db, &["up"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("`down --to 2 --yes`"), "{stderr}");
    let (code, stdout, _) = app("older", &db, &["check"]);
    assert_eq!(code, 7, "{stdout}");
    assert!(stdout.contains("`down --to 2 --yes`"), "{stdout}");

    // Without --yes, the plan: the stored SQL, its placeholder resolved.
    let (code, plan, stderr) = app("older", &db, &["down", "--to", "2"]);
    assert_eq!(code, 2, "without --yes, only the plan: {stderr}");
    assert!(stderr.contains("nothing changed"), "{stderr}");
    assert!(
        plan.contains("ALTER TABLE notes DROP COLUMN tag_id"),
        "{plan}"
    );
    assert!(plan.contains("DROP TABLE tags"), "{plan}");
    assert!(!plan.contains("${tags}"), "{plan}");
    let plan = ok("older", &db, &["plan", "--to", "2"]);
    assert!(plan.contains("DROP TABLE tags"), "{plan}");

    let stdout = ok("older", &db, &["down", "--to", "2", "--yes"]);
    assert!(stdout.contains("reverted 1 migration"), "{stdout}");
    assert_eq!(dump(&db), dump(&older_only), "the older binary's schema");
    let stdout = ok("older", &db, &["check"]);
    assert!(stdout.contains("ok:"), "{stdout}");
    let stdout = ok("older", &db, &["up"]);
    assert!(stdout.contains("up to date"), "{stdout}");
    // The rows of migration 2 are still there.
    let status = ok("older", &db, &["status"]);
    assert!(
        status.contains("database at version 2; 0 pending"),
        "{status}"
    );
}

async fn without_kept_down_sql_nothing_is_undone(backend: Backend) {
    let db = fresh(backend, "rollback-no-down").await;
    ok("newer-no-down", &db, &["up"]);
    let before = dump(&db);

    let status = ok("older", &db, &["status"]);
    assert!(
        status.contains("not in this binary; no down SQL kept"),
        "{status}"
    );
    let (code, _, stderr) = app("older", &db, &["up"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("deploy the binary that has it"), "{stderr}");
    assert!(!stderr.contains("down --to"), "{stderr}");
    let (code, _, stderr) = app("older", &db, &["down", "--to", "1", "--yes"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("migration 3 (add tags)"), "{stderr}");
    assert_eq!(dump(&db), before, "refused before changing anything");
    let status = ok("older", &db, &["status"]);
    assert!(status.contains("database at version 2"), "{status}");
    let newer = ok("newer-no-down", &db, &["status"]);
    assert!(
        newer.contains("database at version 3; 0 pending"),
        "{newer}"
    );
}

async fn a_changed_kept_down_sql_is_not_run(backend: Backend) {
    let db = fresh(backend, "rollback-changed").await;
    ok("newer", &db, &["up"]);
    let pool = db.pool().await;
    pool.execute("UPDATE stowage_migrations SET down_sql = 'DROP TABLE notes' WHERE version = 3")
        .await;
    let before = dump(&db);
    let (code, _, stderr) = app("older", &db, &["down", "--to", "2", "--yes"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("does not match the checksum recorded with it"),
        "{stderr}"
    );
    assert_eq!(dump(&db), before, "nothing ran");
    assert_eq!(pool.i64("SELECT COUNT(*) FROM notes").await, 1);
}

async fn the_older_binary_runs_beside_a_compatible_migration(backend: Backend) {
    let db = fresh(backend, "rollback-compatible").await;
    ok("newer-compatible", &db, &["up"]);
    let before = dump(&db);

    let stdout = ok("older", &db, &["up"]);
    assert!(stdout.contains("up to date at version 2"), "{stdout}");
    assert!(
        stdout.contains(
            "beside 1 newer compatible migration this binary does not have:\n  3 add tags"
        ),
        "{stdout}"
    );
    let stdout = ok("older", &db, &["check"]);
    assert!(
        stdout.contains("ok: the") && stdout.contains("beside 1 newer compatible migration"),
        "{stdout}"
    );
    ok("older", &db, &["verify"]);
    let status = ok("older", &db, &["status"]);
    assert!(status.contains("compatible: runs beside it"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&ok("older", &db, &["--json", "status"])).unwrap();
    assert_eq!(json["migrations"][2]["compatible"], true, "{json}");
    assert_eq!(json["migrations"][2]["undoable"], false, "{json}");
    assert_eq!(dump(&db), before, "the older binary changed nothing");

    // The older binary writes into the schema the newer one made.
    let pool = db.pool().await;
    pool.execute("INSERT INTO notes (id, body) VALUES (2, 'second')")
        .await;
    let newer = ok("newer-compatible", &db, &["status"]);
    assert!(
        newer.contains("database at version 3; 0 pending"),
        "{newer}"
    );

    // Without the marker, the same migration stops the older binary.
    let plain = fresh(backend, "rollback-not-compatible").await;
    ok("newer-no-down", &plain, &["up"]);
    let (code, _, stderr) = app("older", &plain, &["up"]);
    assert_eq!(code, 1, "{stderr}");
    let (code, _, _) = app("older", &plain, &["check"]);
    assert_eq!(code, 7);
}

/// What a database holds: its history and its schema.
type State = (Vec<(i64, String, Option<i64>)>, String);

async fn state(db: &Fresh) -> State {
    (db.pool().await.history().await, dump(db))
}

/// Migration 3 applied by the newer binary, then `down --to 2 --yes` by the
/// binary embedding `set`, killed (SIGKILL) while 3's down SQL runs, its
/// session ended on the server as a crashed host's would be; then the same
/// command again. The state after the kill, and the exit code and state
/// after the second `down`.
async fn killed_undo(backend: Backend, set: &str) -> (State, i32, State) {
    let db = fresh(backend, "rollback-killed").await;
    ok("newer-slow-down", &db, &["up"]);
    let pool = db.pool().await;
    let mut child = Command::new(APP)
        .args(["migrate", "down", "--to", "2", "--yes"])
        .env("STOWAGE_TEST_SET", set)
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test application starts");
    let (running, end) = match backend {
        Backend::Postgres => (
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND \
             datname = current_database() AND pid <> pg_backend_pid()",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE \
             '%pg_sleep(4)%' AND datname = current_database() AND pid <> pg_backend_pid()",
        ),
        Backend::MySql => (
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(4)%' \
             AND DB = DATABASE() AND ID <> CONNECTION_ID()",
            "",
        ),
        // The write lock, which the undo holds from before its first
        // statement to its commit: one transaction, whatever point it
        // reached.
        Backend::Sqlite => ("", ""),
    };
    let started = Instant::now();
    loop {
        let under_way = match backend {
            Backend::Sqlite => sqlite_write_lock_held(&db.url).await,
            _ => pool.i64(running).await > 0,
        };
        if under_way {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{set}: the down SQL never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("the child is killed");
    assert!(!child.wait().expect("the child ends").success());
    match backend {
        Backend::Postgres => pool.execute(end).await,
        Backend::MySql => {
            let id = pool
                .i64(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(4)%' \
                     AND DB = DATABASE() AND ID <> CONNECTION_ID()",
                )
                .await;
            pool.execute(&format!("KILL CONNECTION {id}")).await;
        }
        Backend::Sqlite => {}
    }
    let killed = state(&db).await;
    let (code, _, _) = app(set, &db, &["down", "--to", "2", "--yes"]);
    (killed, code, state(&db).await)
}

/// Whether another connection holds SQLite's write lock on the file.
async fn sqlite_write_lock_held(url: &str) -> bool {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url)
        .await
        .expect("the SQLite file opens");
    sqlx::raw_sql("PRAGMA busy_timeout = 0")
        .execute(&mut conn)
        .await
        .expect("busy_timeout is set");
    let held = sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .is_err();
    if !held {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut conn)
            .await
            .expect("the probe's transaction ends");
    }
    held
}

/// A killed undo of a kept down SQL leaves what a killed undo of the
/// binary's own leaves, and the next `down` does the same from there.
async fn a_killed_undo_of_kept_down_sql_leaves_what_any_killed_undo_leaves(backend: Backend) {
    let own = killed_undo(backend, "newer-slow-down").await;
    let kept = killed_undo(backend, "older").await;
    assert_eq!(kept.0, own.0, "after the kill");
    assert_eq!(kept.1, own.1, "the exit code of the next down");
    assert_eq!(kept.2, own.2, "after the next down");
    assert!(
        own.0.0.iter().any(|(version, _, _)| *version == 3),
        "the killed undo did not finish: {:?}",
        own.0.0
    );
}

/// A history table as the previous release made it (ten columns), written
/// by its statements: the first run of this release adds the columns that
/// keep down SQL, and the previous release's statements still work on it.
async fn a_history_table_of_the_previous_release_is_upgraded(backend: Backend) {
    let db = fresh(backend, "rollback-upgrade").await;
    let (integer, bytes, state, applied_at, options) = match backend {
        Backend::Postgres => (
            "BIGINT",
            "BYTEA",
            "TEXT",
            "TIMESTAMPTZ NOT NULL DEFAULT now()",
            "",
        ),
        Backend::MySql => (
            "BIGINT",
            "VARBINARY(32)",
            "VARCHAR(16)",
            "DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
            " ENGINE=InnoDB",
        ),
        Backend::Sqlite => (
            "INTEGER",
            "BLOB",
            "TEXT",
            "TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            "",
        ),
    };
    let previous_table = format!(
        "CREATE TABLE stowage_migrations (version {integer} PRIMARY KEY, description TEXT NOT \
         NULL, checksum {bytes} NOT NULL, chain {bytes} NOT NULL, state {state} NOT NULL, \
         failed_statement {integer}, error TEXT, applied_at {applied_at}, duration_ms {integer} \
         NOT NULL DEFAULT 0, applied_by TEXT NOT NULL){options}"
    );
    let pool = db.pool().await;
    pool.execute(&previous_table).await;
    // The previous release applied migration 1 of the older set: its SQL
    // and its row, copied from the one this release writes.
    let scratch = fresh(backend, "rollback-upgrade-scratch").await;
    ok("older", &scratch, &["up", "--to", "1"]);
    let scratch_pool = scratch.pool().await;
    let hex = |column: &str| match backend {
        Backend::Postgres => format!("encode({column}, 'hex')"),
        Backend::MySql | Backend::Sqlite => format!("hex({column})"),
    };
    let checksums = scratch_pool
        .strings(&format!(
            "SELECT {} FROM stowage_migrations WHERE version = 1 UNION ALL \
             SELECT {} FROM stowage_migrations WHERE version = 1",
            hex("checksum"),
            hex("chain")
        ))
        .await;
    let literal = |hex: &str| match backend {
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
        Backend::MySql | Backend::Sqlite => format!("X'{hex}'"),
    };
    pool.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(200) NOT NULL)")
        .await;
    let previous_insert = |version: i64, checksum: &str, chain: &str| {
        format!(
            "INSERT INTO stowage_migrations (version, description, checksum, chain, state, \
             failed_statement, duration_ms, applied_by) VALUES ({version}, 'create notes', \
             {}, {}, 'applied', NULL, 1, 'previous release')",
            literal(checksum),
            literal(chain)
        )
    };
    pool.execute(&previous_insert(1, &checksums[0], &checksums[1]))
        .await;

    let stdout = ok("newer", &db, &["up"]);
    assert!(stdout.contains("applied 2 migrations"), "{stdout}");
    assert_eq!(
        pool.i64("SELECT COUNT(*) FROM stowage_migrations WHERE down_sql IS NOT NULL")
            .await,
        2,
        "migrations 2 and 3 keep their down SQL"
    );
    // The previous release's read and write, as it wrote them.
    let previous_select = "SELECT version, description, checksum, chain, state, \
         failed_statement, error, applied_at, duration_ms, applied_by FROM stowage_migrations \
         ORDER BY version";
    assert_eq!(
        pool.i64(&format!(
            "SELECT COUNT(*) FROM ({previous_select}) previous"
        ))
        .await,
        3
    );
    pool.execute(&previous_insert(9, &checksums[0], &checksums[1]))
        .await;
    pool.execute("DELETE FROM stowage_migrations WHERE version = 9")
        .await;

    // A run of this release on the upgraded table changes nothing more.
    let stdout = ok("newer", &db, &["up"]);
    assert!(stdout.contains("up to date"), "{stdout}");
    let status = ok("older", &db, &["status"]);
    assert!(status.contains("its kept down SQL can undo it"), "{status}");
    // Migration 1's row, from the previous release, keeps none: the older
    // binary has its file, and undoes it with that.
    ok("older", &db, &["down", "--to", "0", "--yes"]);
    assert_eq!(pool.i64("SELECT COUNT(*) FROM stowage_migrations").await, 0);
}

stowage_tests::on_every_backend!(
    the_older_binary_undoes_what_it_lacks,
    without_kept_down_sql_nothing_is_undone,
    a_changed_kept_down_sql_is_not_run,
    the_older_binary_runs_beside_a_compatible_migration,
    a_killed_undo_of_kept_down_sql_leaves_what_any_killed_undo_leaves,
    a_history_table_of_the_previous_release_is_upgraded,
);
