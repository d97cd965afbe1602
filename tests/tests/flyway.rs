//! Flyway's conventions: repeatable migrations (`R__`), callback files and
//! Rust hooks, and placeholders, on every backend.

use std::sync::{Arc, Mutex};
use stowage::{Error, Event, MigrationState, Migrator, Target};
use stowage_tests::{Backend, Pool, fresh};

/// `${item_name}` in `V2`, `U2` and a repeatable view over `items`, with
/// the four callback files logging into `callback_log`.
static V1: Migrator =
    stowage::embed_migrations!("fixtures/flyway/v1").with_placeholders(&[("item_name", "widget")]);
/// `V1` with the repeatable view changed.
static V2: Migrator =
    stowage::embed_migrations!("fixtures/flyway/v2").with_placeholders(&[("item_name", "widget")]);
/// `V1` without placeholders: its SQL runs as written.
static AS_WRITTEN: Migrator = stowage::embed_migrations!("fixtures/flyway/v1");

/// How many rows `event` wrote into `callback_log`.
async fn logged(db: &Pool, event: &str) -> i64 {
    db.i64(&format!(
        "SELECT COUNT(*) FROM callback_log WHERE event = '{event}'"
    ))
    .await
}

async fn view_columns(db: &Pool) -> Vec<String> {
    let sql = match db.kind() {
        stowage_tests::Kind::Sqlite(_) => {
            "SELECT name FROM pragma_table_info('item_names') ORDER BY cid"
        }
        stowage_tests::Kind::MySql(_) => {
            "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = 'item_names' ORDER BY ordinal_position"
        }
        stowage_tests::Kind::Postgres(_) => {
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'item_names' ORDER BY ordinal_position"
        }
    };
    db.strings(sql).await
}

/// A repeatable migration is applied after the versioned ones, again
/// exactly when its checksum changed, and `status` shows it; callback files
/// run once per event of a run with work to do, and never on the fast path.
async fn repeatables_and_callback_files(backend: Backend) {
    let db = fresh(backend, "repeatable").await.pool().await;
    let plan = db.plan(&V1, Target::Head).await.unwrap();
    let planned: Vec<i64> = plan.steps.iter().map(|s| s.version).collect();
    assert_eq!(planned.len(), 3);
    assert!(planned[..2] == [1, 2] && planned[2] < 0, "{planned:?}");
    assert!(plan.steps[1].sql.contains("(1, 'widget')"), "{plan}");
    let report = db.run(&V1).await.unwrap();
    let applied: Vec<(bool, &str)> = report
        .applied()
        .iter()
        .map(|a| (a.repeatable, a.description.as_str()))
        .collect();
    assert_eq!(
        applied,
        [
            (false, "create items"),
            (false, "first items"),
            (true, "item names")
        ]
    );
    assert!(report.to_string().contains("\n  R item names"), "{report}");
    assert_eq!(view_columns(&db).await, ["name"]);
    assert_eq!(logged(&db, "beforeMigrate").await, 1);
    assert_eq!(logged(&db, "beforeEachMigrate").await, 3);
    assert_eq!(logged(&db, "afterEachMigrate").await, 3);
    // afterMigrate ran last: the view exists and shows both items.
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM callback_log WHERE event = 'afterMigrate' AND items = 2")
            .await,
        1
    );

    // Up to date: nothing applied, no callback.
    assert!(db.run(&V1).await.unwrap().applied().is_empty());
    assert_eq!(db.i64("SELECT COUNT(*) FROM callback_log").await, 8);

    // The repeatable migration changed: it alone is applied again.
    let status = db.status(&V2).await.unwrap();
    let repeatable = status.migrations.iter().find(|m| m.repeatable).unwrap();
    assert_eq!(
        (repeatable.description.as_str(), repeatable.state),
        ("item names", MigrationState::Outdated)
    );
    assert!(!status.is_up_to_date());
    assert!(status.to_string().contains("1 pending"), "{status}");
    let plan = db.plan(&V2, Target::Head).await.unwrap().to_string();
    assert!(
        plan.starts_with("-- up R item names\n") && plan.contains("SELECT name, id"),
        "{plan}"
    );
    let report = db.run(&V2).await.unwrap();
    let applied: Vec<bool> = report.applied().iter().map(|a| a.repeatable).collect();
    assert_eq!(applied, [true]);
    assert_eq!(view_columns(&db).await, ["name", "id"]);
    assert_eq!(db.i64("SELECT COUNT(*) FROM callback_log").await, 12);
    assert!(db.run(&V2).await.unwrap().applied().is_empty());
    let status = db.status(&V2).await.unwrap();
    assert!(status.is_up_to_date(), "{status}");
    assert_eq!(status.current(), Some(2));
    let shown = status.to_string();
    assert!(
        shown
            .lines()
            .any(|l| l.trim_start().starts_with("R  applied")),
        "{shown}"
    );
    // Back to the first binary: its view is applied again.
    assert_eq!(db.run(&V1).await.unwrap().applied().len(), 1);
    assert_eq!(view_columns(&db).await, ["name"]);
}

/// Placeholders from the API, with `$${` for a literal `${`, in up and in
/// down SQL; without placeholder settings SQL runs exactly as written.
async fn placeholders_from_the_api(backend: Backend) {
    let db = fresh(backend, "placeholders").await.pool().await;
    let runtime = V1.clone().placeholder("item_name", "gadget");
    db.run(&runtime).await.unwrap();
    assert_eq!(
        db.strings("SELECT name FROM items ORDER BY id").await,
        ["gadget", "${kept}"]
    );
    // The checksum covers the SQL as written: another value is no change.
    assert!(db.run(&V1).await.unwrap().applied().is_empty());
    assert!(db.verify(&V1).await.unwrap().is_empty());
    // Down SQL gets the same values.
    db.undo(&runtime, Target::Steps(1)).await.unwrap();
    assert_eq!(db.i64("SELECT COUNT(*) FROM items").await, 0);

    let db = fresh(backend, "as written").await.pool().await;
    db.run(&AS_WRITTEN).await.unwrap();
    assert_eq!(
        db.strings("SELECT name FROM items ORDER BY id").await,
        ["${item_name}", "$${kept}"]
    );
}

/// `STOWAGE_PLACEHOLDER_<NAME>` gives a value, over the one in code, in a
/// process of its own (the test binary's environment stays as it is).
async fn placeholders_from_the_environment(backend: Backend) {
    let fresh = fresh(backend, "placeholder env").await;
    let run = |value: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stowage-test-app"));
        command.args([fresh.url.as_str(), "flyway"]);
        if let Some(value) = value {
            command.env("STOWAGE_PLACEHOLDER_ITEM_NAME", value);
        }
        command.output().unwrap()
    };
    let output = run(Some("from env"));
    assert!(output.status.success(), "{output:?}");
    let db = fresh.pool().await;
    assert_eq!(
        db.strings("SELECT name FROM items WHERE id = 1").await,
        ["from env"]
    );
    db.execute("DELETE FROM items").await;
    db.execute("DELETE FROM stowage_migrations WHERE version = 2")
        .await;
    let output = run(None);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        db.strings("SELECT name FROM items WHERE id = 1").await,
        ["from code"]
    );
}

/// A placeholder without a value stops the run before anything changes.
async fn an_unset_placeholder_changes_nothing(backend: Backend) {
    let db = fresh(backend, "unset placeholder").await.pool().await;
    static UNSET: Migrator =
        stowage::embed_migrations!("fixtures/flyway/v1").with_placeholders(&[]);
    let error = db.run(&UNSET).await.unwrap_err();
    assert!(
        matches!(&error, Error::PlaceholderUnset { name, line: 1, .. } if name == "item_name"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("V2__first_items.sql")
            && message.contains("STOWAGE_PLACEHOLDER_ITEM_NAME")
            && message.contains("nothing was applied"),
        "{message}"
    );
    assert!(db.tables().await.is_empty(), "{:?}", db.tables().await);
}

/// Rust hooks run after the callback files of their event, with the
/// migration they are about, on the migration connection; a failing hook
/// stops the run after what it already applied.
async fn rust_hooks(backend: Backend) {
    let db = fresh(backend, "hooks").await.pool().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut hooked = V1.clone();
    for event in Event::ALL {
        let seen = Arc::clone(&seen);
        hooked = hooked.on(event, move |mut ctx| {
            let seen = Arc::clone(&seen);
            Box::pin(async move {
                let about = ctx.migration().map(|m| m.description().to_owned());
                seen.lock().unwrap().push((event, about));
                ctx.execute("INSERT INTO callback_log (event) VALUES ('hook')")
                    .await?;
                Ok(())
            })
        });
    }
    db.run(&hooked).await.unwrap();
    let about = |d: &str| Some(d.to_owned());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Event::BeforeMigrate, None),
            (Event::BeforeEachMigrate, about("create items")),
            (Event::AfterEachMigrate, about("create items")),
            (Event::BeforeEachMigrate, about("first items")),
            (Event::AfterEachMigrate, about("first items")),
            (Event::BeforeEachMigrate, about("item names")),
            (Event::AfterEachMigrate, about("item names")),
            (Event::AfterMigrate, None),
        ]
    );
    assert_eq!(logged(&db, "hook").await, 8);
    // Up to date: no hook runs.
    db.run(&hooked).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 8);

    let db = fresh(backend, "failing hook").await.pool().await;
    let failing = V1.clone().on(Event::AfterEachMigrate, |ctx| {
        Box::pin(async move {
            match ctx.migration().map(|m| m.description()) {
                Some("first items") => Err("the audit service is down".into()),
                _ => Ok(()),
            }
        })
    });
    let error = db.run(&failing).await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::CallbackFailed {
                event: Event::AfterEachMigrate,
                version: Some(2),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("the audit service is down"),
        "{error}"
    );
    if backend == Backend::Sqlite {
        // SQLite's run is one transaction, rolled back whole.
        assert!(db.tables().await.is_empty());
    } else {
        let recorded: Vec<i64> = db.history().await.iter().map(|row| row.0).collect();
        assert_eq!(recorded, [1, 2], "what ran before the hook stays recorded");
    }
}

/// A failing callback file names itself; the migrations before it stay.
async fn a_failing_callback_file_stops_the_run(backend: Backend) {
    let db = fresh(backend, "failing callback").await.pool().await;
    // The log table exists already without the column afterMigrate writes.
    db.execute("CREATE TABLE callback_log (event VARCHAR(40) NOT NULL)")
        .await;
    // Made on purpose beside the migrations: allowed.
    let v1 = V1.clone().with_existing_schema(stowage::Policy::Allow);
    let error = db.run(&v1).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            Error::CallbackFailed {
                event: Event::AfterMigrate,
                ..
            }
        ) && message.contains("afterMigrate.sql")
            && message.contains("a later run does not run this one again"),
        "{message}"
    );
    if backend != Backend::Sqlite {
        // SQLite's run is one transaction, rolled back whole.
        let recorded: Vec<i64> = db.history().await.iter().map(|row| row.0).collect();
        assert_eq!(recorded, [1, 2]);
    }
}

stowage_tests::on_every_backend!(
    repeatables_and_callback_files,
    placeholders_from_the_api,
    placeholders_from_the_environment,
    an_unset_placeholder_changes_nothing,
    rust_hooks,
    a_failing_callback_file_stops_the_run,
);

static FK_LATER: Migrator = stowage::embed_migrations!("fixtures/fk_later/plain");
static FK_LATER_WITH_CALLBACK: Migrator = stowage::embed_migrations!("fixtures/fk_later/callback");

/// A MySQL migration that references a table made later in the file
/// applies only with `SET FOREIGN_KEY_CHECKS = 0`, which a `beforeMigrate`
/// callback sets on the migration connection, and on it alone.
#[tokio::test]
async fn mysql_before_migrate_sets_the_migration_session() {
    let db = fresh(Backend::MySql, "fk later").await.pool().await;
    let error = db.run(&FK_LATER).await.unwrap_err().to_string();
    assert!(error.contains("migration 1"), "{error}");

    let with_callback = fresh(Backend::MySql, "fk later callback").await;
    // One connection: the run's, unless it is closed after migrating.
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&with_callback.url)
        .await
        .unwrap();
    FK_LATER_WITH_CALLBACK.run(&pool).await.unwrap();
    let tables = with_callback.pool().await.tables().await;
    assert_eq!(tables, ["authors", "posts", "stowage_migrations"]);
    let checks: i64 = sqlx::query_scalar("SELECT @@SESSION.foreign_key_checks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(checks, 1, "the setting stayed on the migration connection");
}
