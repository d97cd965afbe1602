//! `Migrator::dump` and `migrate dump`: the schema read from the catalogue,
//! held against each database's own tools. At every version of a set that
//! holds every kind of object the backend has:
//!
//! - the dump, applied to an empty database by the database's own client,
//!   recreates the same schema (stowage's model and the native dump tool's
//!   output both equal);
//! - the dump, applied by stowage as a migration, does the same;
//! - the same files applied by the database's own client give the same
//!   model as stowage applying them;
//! - `app migrate dump` (the binary, on `AnyPool`) prints the same script,
//!   and so does `dump --expected --to V`, built in a scratch database.

use stowage::{Migrator, ObjectKind, Schema};
use stowage_tests::{Backend, fresh, native, on_every_backend};

static SCHEMA: Migrator = stowage::embed_migrations!("fixtures/schema");

/// stowage's own tables, which no dump holds.
const OWN: &[&str] = &[
    "stowage_migrations",
    "stowage_migrations_repeatable",
    "stowage_migrations_lock",
];

const APP: &str = env!("CARGO_BIN_EXE_stowage-test-cli");

/// `app migrate <args>` on `url` with the schema set: stdout, after
/// asserting success.
fn app(url: &str, args: &[&str]) -> String {
    let (code, stdout) = app_code(url, args);
    assert_eq!(code, 0, "migrate {args:?} failed: {stdout}");
    stdout
}

fn differences(actual: &Schema, expected: &Schema) -> String {
    actual
        .diff(expected)
        .iter()
        .map(|d| format!("  {d}\n"))
        .collect()
}

/// A migrator of one migration, `1_schema.sql`, holding `sql`.
fn migrator_of(sql: &str) -> Migrator {
    Migrator::from_dir(&stowage_tests::dir_of("1_schema.sql", sql)).unwrap()
}

/// The lines only one of two texts has, marked `-` (the first) and `+`.
fn line_diff(a: &str, b: &str) -> String {
    let only = |x: &str, y: &str, mark: char| -> String {
        let others: Vec<&str> = y.lines().collect();
        x.lines()
            .filter(|line| !others.contains(line))
            .map(|line| format!("{mark} {line}\n"))
            .collect()
    };
    format!("{}{}", only(a, b, '-'), only(b, a, '+'))
}

async fn dump_round_trips_at_every_version(backend: Backend) {
    let set = SCHEMA.set(backend.dialect()).unwrap();
    let mut previous: Option<Schema> = None;
    for migration in set.iter() {
        let version = migration.version();
        let built = fresh(backend, "built").await;
        let pool = built.pool().await;
        pool.run_to(&SCHEMA, version).await.unwrap();
        let schema = pool.dump(&SCHEMA).await;
        assert!(
            schema
                .objects()
                .iter()
                .all(|o| !o.name.contains("stowage_migrations")),
            "stowage's own tables are left out: {schema:#?}"
        );
        if let Some(previous) = &previous {
            assert!(
                !schema.diff(previous).is_empty(),
                "version {version} changes the schema, and the dump must see it"
            );
        }
        let sql = schema.to_sql();

        // The dump through the database's own client recreates the schema.
        let copy = fresh(backend, "copy").await;
        native::client(backend, &copy.url, &sql);
        let copied = copy.pool().await.dump(&SCHEMA).await;
        assert!(
            copied == schema,
            "at version {version}, the dump applied to an empty database gives another schema:\n{}\nthe dump:\n{sql}",
            differences(&copied, &schema)
        );
        match (
            native::dump(backend, &built.url, OWN),
            native::dump(backend, &copy.url, OWN),
        ) {
            (Some(original), Some(recreated)) => assert!(
                original == recreated,
                "at version {version}, the native dump tool sees another schema in the copy:\n{}\nthe dump:\n{sql}",
                line_diff(&original, &recreated)
            ),
            (None, None) => eprintln!(
                "the installed pg_dump is older than this server: the copy is compared by \
                 stowage's model only"
            ),
            other => panic!("only one of the two databases could be dumped: {other:?}"),
        }

        // The dump as a migration of its own: stowage applies it alike.
        let as_migration = fresh(backend, "as migration").await;
        let target = as_migration.pool().await;
        target.run(&migrator_of(&sql)).await.unwrap();
        let applied = target.dump(&SCHEMA).await;
        assert!(
            applied == schema,
            "at version {version}, the dump applied by stowage gives another schema:\n{}",
            differences(&applied, &schema)
        );
        target.close().await;

        // The same files through the database's own client: the same model.
        let by_client = fresh(backend, "by client").await;
        for applied in set.iter().take_while(|m| m.version() <= version) {
            native::client(backend, &by_client.url, applied.up_sql());
        }
        let theirs = by_client.pool().await.dump(&SCHEMA).await;
        assert!(
            theirs == schema,
            "at version {version}, the client's schema is not stowage's:\n{}",
            differences(&theirs, &schema)
        );

        // The binary's `migrate dump`, on AnyPool, prints the same script.
        assert_eq!(app(&built.url, &["dump"]).trim_end(), sql.trim_end());
        // And `dump --expected --to V` builds the same in a scratch database.
        let to = version.to_string();
        assert_eq!(
            app(&built.url, &["dump", "--expected", "--to", &to]).trim_end(),
            sql.trim_end()
        );
        previous = Some(schema);
        pool.close().await;
    }
}

/// What the model holds of each kind, in the server's rendering.
async fn every_kind_is_read(backend: Backend) {
    let db = fresh(backend, "kinds").await;
    let pool = db.pool().await;
    pool.run(&SCHEMA).await.unwrap();
    let schema = pool.dump(&SCHEMA).await;
    let has = |kind: ObjectKind, name: &str, part: &str| {
        let object = schema
            .get(kind, name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {schema:#?}"));
        assert!(
            object.definition.contains(part),
            "{kind} {name} should hold `{part}`: {}",
            object.definition
        );
    };
    match backend {
        Backend::Postgres => {
            has(ObjectKind::Schema, "billing", "CREATE SCHEMA billing");
            has(
                ObjectKind::Type,
                "public.mood",
                "ENUM ('sad', 'ok', 'happy')",
            );
            has(
                ObjectKind::Type,
                "public.positive_int",
                "CHECK ((VALUE > 0))",
            );
            has(ObjectKind::Type, "public.pair", "(a integer, b text)");
            has(
                ObjectKind::Table,
                "public.users",
                "id bigint GENERATED ALWAYS AS IDENTITY NOT NULL",
            );
            has(
                ObjectKind::Table,
                "public.users",
                "name character varying(80) COLLATE pg_catalog.\"C\"",
            );
            has(
                ObjectKind::Table,
                "public.users",
                "GENERATED ALWAYS AS (lower(email)) STORED",
            );
            has(
                ObjectKind::Table,
                "public.users",
                "bio text DEFAULT ''::text",
            );
            has(
                ObjectKind::Table,
                "billing.invoices",
                "EXCLUDE USING gist (period WITH &&)",
            );
            // What only an `ALTER TABLE` says of a column, as pg_dump writes it.
            for setting in [
                "ALTER TABLE ONLY public.users ALTER COLUMN email SET (n_distinct=-0.5)",
                "ALTER TABLE ONLY public.users ALTER COLUMN email SET STATISTICS 500",
                "ALTER TABLE ONLY public.users ALTER COLUMN bio SET STORAGE EXTERNAL",
            ] {
                has(ObjectKind::Table, "public.users", setting);
            }
            has(
                ObjectKind::Table,
                "public.events",
                "PARTITION BY RANGE (at)",
            );
            has(
                ObjectKind::Table,
                "public.events_2026",
                "PARTITION OF public.events FOR VALUES FROM",
            );
            has(
                ObjectKind::Table,
                "public.user_log",
                "INHERITS (public.base_log)",
            );
            has(ObjectKind::Table, "public.cache", "CREATE UNLOGGED TABLE");
            has(
                ObjectKind::Sequence,
                "public.ticket_numbers",
                "INCREMENT BY 5",
            );
            has(
                ObjectKind::Sequence,
                "billing.invoices_id_seq",
                "AS integer",
            );
            has(
                ObjectKind::SequenceOwner,
                "public.owned_numbers",
                "OWNED BY public.counters.n",
            );
            has(
                ObjectKind::Constraint,
                "billing.invoices.invoices_user_id_fkey",
                "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
            );
            has(
                ObjectKind::Constraint,
                "billing.invoices.amount_positive",
                "NOT VALID",
            );
            has(
                ObjectKind::Index,
                "billing.invoices_user",
                "WHERE (amount > (0)::numeric)",
            );
            has(
                ObjectKind::Index,
                "public.totals_user",
                "CREATE UNIQUE INDEX",
            );
            has(ObjectKind::View, "public.active_users", "mood");
            has(
                ObjectKind::MaterializedView,
                "public.totals",
                "WITH NO DATA",
            );
            has(ObjectKind::Function, "public.touch()", "LANGUAGE plpgsql");
            has(
                ObjectKind::Function,
                "public.reset_scores()",
                "CREATE OR REPLACE PROCEDURE",
            );
            has(
                ObjectKind::Trigger,
                "public.users.users_touch",
                "EXECUTE FUNCTION touch()",
            );
            has(
                ObjectKind::Comment,
                "COLUMN public.users.email",
                "'unique, as typed'",
            );
            has(
                ObjectKind::Comment,
                "VIEW public.active_users",
                "everyone not sad",
            );
            has(
                ObjectKind::Index,
                "public.events_2026_at_idx",
                "ATTACH PARTITION public.events_2026_at_idx",
            );
            // Made by constraints and identity columns: not objects of their own.
            for (kind, name) in [
                (ObjectKind::Index, "public.users_pkey"),
                (ObjectKind::Sequence, "public.users_id_seq"),
            ] {
                assert!(
                    schema.get(kind, name).is_none(),
                    "{kind} {name} is not the user's"
                );
            }
        }
        Backend::MySql => {
            has(ObjectKind::Table, "users", "CHECK (`name` <> '')");
            has(ObjectKind::Table, "invoices", "ON DELETE CASCADE");
            has(ObjectKind::Table, "logs", "ENGINE=MyISAM");
            has(ObjectKind::Sequence, "tickets", "increment by 5");
            has(
                ObjectKind::View,
                "uses_function",
                "`double_it`(`users`.`id`)",
            );
            has(ObjectKind::Function, "reset_names", "CREATE PROCEDURE");
            has(ObjectKind::Function, "double_it", "RETURN x * 2");
            has(ObjectKind::Trigger, "users_lower", "LOWER(NEW.email)");
            has(ObjectKind::Event, "purge_logs", "EVERY 1 DAY");
            let users = &schema.get(ObjectKind::Table, "users").unwrap().definition;
            assert!(
                !users.contains("AUTO_INCREMENT="),
                "the counter is left out: {users}"
            );
            for object in schema.objects() {
                assert!(
                    !object.definition.contains("DEFINER="),
                    "{}",
                    object.definition
                );
            }
        }
        Backend::Sqlite => {
            has(ObjectKind::Table, "users", "bio TEXT");
            has(ObjectKind::Table, "documents", "USING fts5(body)");
            has(ObjectKind::Table, "typed", "STRICT");
            // As SQLite keeps it, to the space before the `;`.
            has(ObjectKind::Index, "typed_b", "ON typed (b) ");
            has(ObjectKind::Index, "invoices_user", "WHERE amount > 0");
            has(ObjectKind::View, "z_active", "SELECT id, email FROM users");
            has(ObjectKind::Trigger, "users_lower", "lower(NEW.email)");
            assert!(
                schema.get(ObjectKind::Table, "documents_data").is_none(),
                "the virtual table's shadow tables are its own"
            );
        }
    }
    pool.close().await;
}

const TESTDB: &str = env!("CARGO_BIN_EXE_stowage-test-testdb");

/// `stowage-test-testdb - <mode> <path>` (`schema-file`: `check_schema_file`,
/// `schema-snapshot`: `check_schema_snapshot`) on `backend`'s server, in a
/// test process of its own: its exit code and stderr.
fn testdb_check(
    mode: &str,
    backend: Backend,
    path: &std::path::Path,
    update: bool,
) -> (i32, String) {
    let mut command = std::process::Command::new(TESTDB);
    command
        .args(["-", mode])
        .arg(path)
        .env(
            "STOWAGE_TEST_DATABASE_URL",
            stowage_tests::server_url(backend),
        )
        .env_remove(stowage::testing::UPDATE_VAR);
    if update {
        command.env(stowage::testing::UPDATE_VAR, "1");
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn check_schema_file(backend: Backend, path: &std::path::Path, update: bool) -> (i32, String) {
    testdb_check("schema-file", backend, path, update)
}

/// The schema file beside the migrations: missing, then written with
/// `STOWAGE_UPDATE_SCHEMA=1` as the schema the migrations build, then
/// current, then out of date when it no longer says what they build.
async fn the_schema_file_is_kept_current(backend: Backend) {
    static OBJECTS: Migrator = stowage::embed_migrations!("fixtures/objects");
    let path = std::env::temp_dir().join(format!(
        "stowage-schema-{backend:?}-{}.sql",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let (code, stderr) = check_schema_file(backend, &path, false);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains("STOWAGE_UPDATE_SCHEMA=1"), "{stderr}");

    let (code, stderr) = check_schema_file(backend, &path, true);
    assert_eq!(code, 0, "{stderr}");
    let written = std::fs::read_to_string(&path).unwrap();
    let db = fresh(backend, "schema file").await;
    let pool = db.pool().await;
    pool.run(&OBJECTS).await.unwrap();
    assert_eq!(written, pool.dump(&OBJECTS).await.to_sql());
    pool.close().await;
    assert_eq!(check_schema_file(backend, &path, false).0, 0);

    let first = written
        .lines()
        .find(|line| line.starts_with("CREATE"))
        .unwrap()
        .to_owned();
    std::fs::write(
        &path,
        written.replacen(&first, "CREATE TABLE gone (id int)", 1),
    )
    .unwrap();
    let (code, stderr) = check_schema_file(backend, &path, false);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("+ {first}")), "{stderr}");
    assert!(stderr.contains("- CREATE TABLE gone (id int)"), "{stderr}");
    std::fs::remove_file(&path).unwrap();
}

/// `app migrate <args>` on `url` with the schema set: exit code and stdout.
fn app_code(url: &str, args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(APP)
        .args(["migrate"])
        .args(args)
        .env("DATABASE_URL", url)
        .env("STOWAGE_TEST_SET", "schema")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// At every version, the schema is the one the migrations build there:
/// no drift, through the library and the binary.
async fn no_drift_at_any_version(backend: Backend) {
    let server = stowage_tests::server_url(backend);
    let empty = fresh(backend, "drift").await;
    let drift = empty.pool().await.drift(&SCHEMA, &server).await;
    assert_eq!(
        (drift.version, drift.differences.len()),
        (None, 0),
        "{drift}"
    );
    for migration in SCHEMA.set(backend.dialect()).unwrap().iter() {
        let db = fresh(backend, "drift").await;
        let pool = db.pool().await;
        pool.run_to(&SCHEMA, migration.version()).await.unwrap();
        let drift = pool.drift(&SCHEMA, &server).await;
        assert_eq!(drift.version, Some(migration.version()));
        assert!(drift.differences.is_empty(), "{drift}");
        let (code, stdout) = app_code(&db.url, &["drift"]);
        assert_eq!(code, 0, "{stdout}");
        assert!(stdout.starts_with("no drift"), "{stdout}");
        pool.close().await;
    }
}

/// Each kind of hand change made after the migrations, on a database of
/// its own: the object it touched, reported as missing, unexpected or
/// changed; through the binary, exit 10 and the JSON's differences.
async fn hand_changes_are_drift(backend: Backend) {
    use stowage::Difference;
    let server = stowage_tests::server_url(backend);
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Change {
        Missing,
        Unexpected,
        Changed,
    }
    use Change::*;
    let changes: &[(&str, ObjectKind, &str, Change)] = match backend {
        Backend::Postgres => &[
            (
                "ALTER TABLE users ADD COLUMN extra int",
                ObjectKind::Table,
                "public.users",
                Changed,
            ),
            (
                "ALTER TABLE users ALTER COLUMN bio TYPE varchar(10)",
                ObjectKind::Table,
                "public.users",
                Changed,
            ),
            (
                "ALTER TABLE users ALTER COLUMN bio SET DEFAULT 'x'",
                ObjectKind::Table,
                "public.users",
                Changed,
            ),
            (
                "ALTER TABLE users ALTER COLUMN email SET (n_distinct = -0.1)",
                ObjectKind::Table,
                "public.users",
                Changed,
            ),
            (
                "DROP INDEX users_lower_name",
                ObjectKind::Index,
                "public.users_lower_name",
                Missing,
            ),
            (
                "DROP INDEX users_lower_name; CREATE INDEX users_lower_name ON users (name)",
                ObjectKind::Index,
                "public.users_lower_name",
                Changed,
            ),
            (
                "ALTER TABLE billing.invoices DROP CONSTRAINT amount_positive",
                ObjectKind::Constraint,
                "billing.invoices.amount_positive",
                Missing,
            ),
            (
                "ALTER TABLE users DROP CONSTRAINT name_not_blank",
                ObjectKind::Table,
                "public.users",
                Changed,
            ),
            (
                "CREATE OR REPLACE VIEW active_users AS SELECT id, email, mood FROM users WHERE mood = 'happy'",
                ObjectKind::View,
                "public.active_users",
                Changed,
            ),
            (
                "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
                ObjectKind::Function,
                "public.touch()",
                Changed,
            ),
            (
                "DROP TRIGGER users_touch ON users; CREATE TRIGGER users_touch BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION touch()",
                ObjectKind::Trigger,
                "public.users.users_touch",
                Changed,
            ),
            (
                "CREATE TABLE hotfix (id int)",
                ObjectKind::Table,
                "public.hotfix",
                Unexpected,
            ),
        ],
        Backend::MySql => &[
            (
                "ALTER TABLE users ADD COLUMN extra INT",
                ObjectKind::Table,
                "users",
                Changed,
            ),
            (
                "ALTER TABLE users MODIFY bio VARCHAR(10)",
                ObjectKind::Table,
                "users",
                Changed,
            ),
            (
                "ALTER TABLE users ALTER COLUMN bio SET DEFAULT 'x'",
                ObjectKind::Table,
                "users",
                Changed,
            ),
            (
                "DROP INDEX users_created ON users",
                ObjectKind::Table,
                "users",
                Changed,
            ),
            (
                "ALTER TABLE users DROP CONSTRAINT name_check",
                ObjectKind::Table,
                "users",
                Changed,
            ),
            (
                "CREATE OR REPLACE VIEW z_active AS SELECT id FROM users",
                ObjectKind::View,
                "z_active",
                Changed,
            ),
            (
                "DROP PROCEDURE reset_names",
                ObjectKind::Function,
                "reset_names",
                Missing,
            ),
            (
                "DROP TRIGGER users_lower",
                ObjectKind::Trigger,
                "users_lower",
                Missing,
            ),
            (
                "CREATE TRIGGER users_upper BEFORE UPDATE ON users FOR EACH ROW SET NEW.email = UPPER(NEW.email)",
                ObjectKind::Trigger,
                "users_upper",
                Unexpected,
            ),
            (
                "CREATE TABLE hotfix (id INT)",
                ObjectKind::Table,
                "hotfix",
                Unexpected,
            ),
        ],
        Backend::Sqlite => &[
            (
                "ALTER TABLE users ADD COLUMN extra INTEGER",
                ObjectKind::Table,
                "users",
                Changed,
            ),
            (
                "DROP INDEX invoices_user",
                ObjectKind::Index,
                "invoices_user",
                Missing,
            ),
            (
                "DROP INDEX invoices_user; CREATE INDEX invoices_user ON invoices (amount)",
                ObjectKind::Index,
                "invoices_user",
                Changed,
            ),
            (
                "DROP VIEW z_active; CREATE VIEW z_active AS SELECT id FROM users",
                ObjectKind::View,
                "z_active",
                Changed,
            ),
            (
                "DROP TRIGGER users_lower; CREATE TRIGGER users_lower AFTER UPDATE ON users BEGIN SELECT 1; END",
                ObjectKind::Trigger,
                "users_lower",
                Changed,
            ),
            (
                "CREATE TABLE hotfix (id INTEGER)",
                ObjectKind::Table,
                "hotfix",
                Unexpected,
            ),
        ],
    };
    for &(sql, kind, name, change) in changes {
        let db = fresh(backend, "hand change").await;
        let pool = db.pool().await;
        pool.run(&SCHEMA).await.unwrap();
        native::client(backend, &db.url, &format!("{sql};"));
        let drift = pool.drift(&SCHEMA, &server).await;
        let found: Vec<(ObjectKind, &str, Change)> = drift
            .differences
            .iter()
            .map(|d| {
                let seen = match d {
                    Difference::Missing(_) => Missing,
                    Difference::Unexpected(_) => Unexpected,
                    _ => Changed,
                };
                (d.object().kind, d.object().name.as_str(), seen)
            })
            .collect();
        assert_eq!(found, [(kind, name, change)], "after `{sql}`:\n{drift}");
        let (code, stdout) = app_code(&db.url, &["drift", "--json"]);
        assert_eq!(code, 10, "{stdout}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(json["drift"]["differences"][0]["name"], name, "{stdout}");
        pool.close().await;
    }
}

/// A URL of `backend`'s kind on which no server listens: a scratch
/// database made there fails, so a drift that succeeds did not make one.
fn no_server(backend: Backend) -> String {
    match backend {
        Backend::Postgres => "postgres://root@127.0.0.1:1/none?connect_timeout=2".to_owned(),
        Backend::MySql => "mysql://root@127.0.0.1:1/none".to_owned(),
        // SQLite's scratch database is a temporary file whatever the URL.
        Backend::Sqlite => "sqlite://".to_owned(),
    }
}

/// The schema snapshot of a database at the head, given to the migrator:
/// drift on a database at that version uses it and needs no server for a
/// scratch database, and still reports a hand change; at another version,
/// from other migrations, or from another server it is not used; a
/// snapshot that cannot be read is an error, not a silent fallback.
async fn drift_uses_the_snapshot_of_its_version(backend: Backend) {
    let server = stowage_tests::server_url(backend);
    let head = fresh(backend, "snapshot").await;
    let pool = head.pool().await;
    pool.run(&SCHEMA).await.unwrap();
    let text = pool.schema_snapshot(&SCHEMA).await;
    assert!(
        text.contains(&format!("-- dialect: {}\n", backend.dialect().folder())),
        "{text}"
    );
    let versions: Vec<i64> = SCHEMA
        .set(backend.dialect())
        .unwrap()
        .iter()
        .map(|m| m.version())
        .collect();
    let head_version = *versions.last().unwrap();
    assert!(
        text.contains(&format!("-- version: {head_version}\n")),
        "{text}"
    );
    let with = SCHEMA.clone().with_schema_snapshot(text.clone());

    let drift = pool.try_drift(&with, &no_server(backend)).await.unwrap();
    assert!(drift.from_snapshot, "{drift}");
    assert!(drift.differences.is_empty(), "{drift}");
    assert!(
        drift.to_string().contains("embedded schema snapshot"),
        "{drift}"
    );

    native::client(backend, &head.url, "CREATE TABLE hotfix (id INTEGER);");
    let drift = pool.try_drift(&with, &no_server(backend)).await.unwrap();
    assert!(drift.from_snapshot, "{drift}");
    let found: Vec<&str> = drift
        .differences
        .iter()
        .map(|d| d.object().name.as_str())
        .collect();
    let hotfix = match backend {
        Backend::Postgres => "public.hotfix",
        _ => "hotfix",
    };
    assert_eq!(found, [hotfix], "{drift}");
    pool.close().await;

    // At an older version the snapshot does not hold the expected schema:
    // it is built in a scratch database, as without one.
    let older = fresh(backend, "snapshot older").await;
    let older_pool = older.pool().await;
    older_pool.run_to(&SCHEMA, versions[0]).await.unwrap();
    let drift = older_pool.try_drift(&with, &server).await.unwrap();
    assert!(!drift.from_snapshot, "{drift}");
    assert!(drift.differences.is_empty(), "{drift}");
    older_pool.close().await;

    // Made from other migrations of the same version, or on another
    // server, it is not used either.
    let other = migrator_of("CREATE TABLE other (id INTEGER);");
    let other_db = fresh(backend, "snapshot other").await;
    let other_pool = other_db.pool().await;
    other_pool.run(&other).await.unwrap();
    let mine = other_pool.schema_snapshot(&other).await;
    let at_one = SCHEMA.clone().with_schema_snapshot(mine.clone());
    let one = fresh(backend, "snapshot one").await;
    let one_pool = one.pool().await;
    one_pool.run_to(&SCHEMA, 1).await.unwrap();
    let drift = one_pool.try_drift(&at_one, &server).await.unwrap();
    assert!(
        !drift.from_snapshot && drift.differences.is_empty(),
        "{drift}"
    );
    one_pool.close().await;
    let line = mine.lines().find(|l| l.starts_with("-- server: ")).unwrap();
    let elsewhere = mine.replacen(line, "-- server: Elsewhere 99", 1);
    let drift = other_pool
        .try_drift(&other.clone().with_schema_snapshot(elsewhere), &server)
        .await
        .unwrap();
    assert!(
        !drift.from_snapshot && drift.differences.is_empty(),
        "{drift}"
    );
    let drift = other_pool
        .try_drift(
            &other.clone().with_schema_snapshot(mine.clone()),
            &no_server(backend),
        )
        .await
        .unwrap();
    assert!(
        drift.from_snapshot && drift.differences.is_empty(),
        "{drift}"
    );

    // Cut short, it is refused.
    let cut = &mine[..mine.len() - 3];
    let error = other_pool
        .try_drift(&other.clone().with_schema_snapshot(cut.to_owned()), &server)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, stowage::Error::SchemaFile { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("check_schema_snapshot"),
        "{error}"
    );
    other_pool.close().await;
}

fn check_schema_snapshot(
    backend: Backend,
    folder: &std::path::Path,
    update: bool,
) -> (i32, String) {
    testdb_check("schema-snapshot", backend, folder, update)
}

/// The snapshot file in a folder: missing, then written with
/// `STOWAGE_UPDATE_SCHEMA=1` under the dialect's name as the migrations'
/// head's snapshot, then current, then out of date once it differs.
async fn the_schema_snapshot_is_kept_current(backend: Backend) {
    let folder = std::env::temp_dir().join(format!(
        "stowage-snapshot-{backend:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let (code, stderr) = check_schema_snapshot(backend, &folder, false);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    let (code, stderr) = check_schema_snapshot(backend, &folder, true);
    assert_eq!(code, 0, "{stderr}");
    let path = folder.join(format!("schema.{}.snapshot", backend.dialect().folder()));
    let written = std::fs::read_to_string(&path).unwrap();
    let db = fresh(backend, "snapshot file").await;
    let pool = db.pool().await;
    pool.run(&SCHEMA).await.unwrap();
    assert_eq!(written, pool.schema_snapshot(&SCHEMA).await);
    pool.close().await;
    assert_eq!(check_schema_snapshot(backend, &folder, false).0, 0);

    std::fs::write(&path, written.replacen("-- version: ", "-- version: 1", 1)).unwrap();
    let (code, stderr) = check_schema_snapshot(backend, &folder, false);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("STOWAGE_UPDATE_SCHEMA=1"), "{stderr}");
    std::fs::remove_dir_all(&folder).unwrap();
}

/// MariaDB lists the unique keys of a table it creates on `NOT NULL`
/// columns first, but keeps a key's place when its column is made nullable
/// (kratos's 25th migration, whose statements these are): a dump of such
/// a table, applied to an empty database, is listed otherwise, and must
/// still be the same schema.
#[tokio::test]
async fn mysql_keys_in_another_order_are_one_schema() {
    let built = fresh(Backend::MySql, "keys").await;
    native::client(
        Backend::MySql,
        &built.url,
        "CREATE TABLE k (id char(36) NOT NULL PRIMARY KEY, code varchar(32) NOT NULL,
           via varchar(16) NOT NULL, value varchar(400) NOT NULL) CHARACTER SET utf8mb4;
         CREATE UNIQUE INDEX code_uq ON k (code);
         CREATE INDEX code_idx ON k (code);
         CREATE UNIQUE INDEX via_value_uq ON k (via, value);
         ALTER TABLE k MODIFY COLUMN code VARCHAR(255) BINARY;",
    );
    let schema = built.pool().await.dump(&SCHEMA).await;
    let copy = fresh(Backend::MySql, "keys_copy").await;
    native::client(Backend::MySql, &copy.url, &schema.to_sql());
    let again = copy.pool().await.dump(&SCHEMA).await;
    assert_eq!(again, schema, "{:#?}", again.diff(&schema));
    // And the server's own dump holds the same keys, in its order.
    let listed = |url: &str| {
        let dump = native::dump(Backend::MySql, url, &[]).unwrap();
        let mut keys: Vec<String> = dump
            .lines()
            .filter(|l| {
                l.trim_start().starts_with("UNIQUE KEY") || l.trim_start().starts_with("KEY")
            })
            .map(|l| l.trim().trim_end_matches(',').to_owned())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(listed(&built.url), listed(&copy.url));
}

/// The schema set's folder holds a SQLite snapshot: `embed_migrations!`
/// embeds it, it is current, and the binary's `drift` uses it at the head.
#[tokio::test]
async fn the_embedded_sqlite_snapshot_is_current_and_used() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema");
    let (code, stderr) = check_schema_snapshot(Backend::Sqlite, &folder, false);
    assert_eq!(code, 0, "{stderr}");
    let db = fresh(Backend::Sqlite, "embedded snapshot").await;
    let pool = db.pool().await;
    pool.run(&SCHEMA).await.unwrap();
    let drift = pool.drift(&SCHEMA, "sqlite://").await;
    assert!(
        drift.from_snapshot && drift.differences.is_empty(),
        "{drift}"
    );
    pool.close().await;
    let (code, stdout) = app_code(&db.url, &["drift", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["drift"]["from_snapshot"], true, "{stdout}");
}

/// A database built by the database's own client from the set's files up
/// to version 2, without history: `up` refuses, changing nothing and (in
/// the binary) naming version 2; `baseline` stamps 2; then `up` applies
/// the rest and the schema has no drift. A hand change makes baseline
/// refuse, naming the closest version and the difference.
async fn a_database_built_otherwise_is_baselined(backend: Backend) {
    let server = stowage_tests::server_url(backend);
    let set = SCHEMA.set(backend.dialect()).unwrap();
    let by_client = |db: &stowage_tests::Fresh| {
        for migration in set.iter().take(2) {
            native::client(backend, &db.url, migration.up_sql());
        }
    };
    let db = fresh(backend, "baseline").await;
    by_client(&db);
    let pool = db.pool().await;
    let before = pool.dump(&SCHEMA).await;
    let error = pool.run(&SCHEMA).await.unwrap_err();
    let stowage::Error::ExistingSchema { objects, matching } = &error else {
        panic!("not refused as built otherwise: {error:?}");
    };
    assert!(objects.iter().any(|o| o.ends_with("users")), "{objects:?}");
    assert_eq!(
        *matching, None,
        "the library has no server to build versions on"
    );
    assert!(error.to_string().contains("`baseline`"), "{error}");
    assert_eq!(pool.dump(&SCHEMA).await, before, "nothing changed");
    assert!(
        !pool
            .tables()
            .await
            .iter()
            .any(|t| t.contains("stowage_migrations"))
    );

    let output = std::process::Command::new(APP)
        .args(["migrate", "up"])
        .env("DATABASE_URL", &db.url)
        .env("STOWAGE_TEST_SET", "schema")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("at version 2: record that with `stamp 2`"),
        "{stderr}"
    );

    let (code, stdout) = app_code(&db.url, &["baseline"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("at version 2: recorded it as applied"),
        "{stdout}"
    );
    let status = pool.status(&SCHEMA).await.unwrap();
    assert_eq!(status.current, Some(2));
    assert_eq!(
        stowage_tests::versions(&pool.run(&SCHEMA).await.unwrap()),
        [3]
    );
    assert!(pool.drift(&SCHEMA, &server).await.differences.is_empty());
    pool.close().await;

    // Through the library, on a database with one table more.
    let changed = fresh(backend, "baseline").await;
    by_client(&changed);
    native::client(backend, &changed.url, "CREATE TABLE hotfix (id INTEGER);");
    let pool = changed.pool().await;
    let error = on_pool(&pool, &server).await.unwrap_err();
    let stowage::Error::NoMatchingVersion {
        closest,
        differences,
    } = &error
    else {
        panic!("not refused: {error:?}");
    };
    assert_eq!(*closest, Some(2), "{error}");
    assert_eq!(differences.len(), 1, "{error}");
    assert!(
        differences[0].contains("hotfix") && differences[0].contains("not expected"),
        "{error}"
    );
    assert_eq!(
        pool.status(&SCHEMA).await.unwrap().current,
        None,
        "nothing recorded"
    );
    pool.close().await;

    // Nothing to record on an empty database.
    let empty = fresh(backend, "baseline").await;
    assert_eq!(on_pool(&empty.pool().await, &server).await.unwrap(), None);
}

async fn on_pool(
    pool: &stowage_tests::Pool,
    server: &str,
) -> Result<Option<std::ops::RangeInclusive<i64>>, stowage::Error> {
    match pool.kind() {
        stowage_tests::Kind::Postgres(p) => SCHEMA.baseline(p, server).await,
        stowage_tests::Kind::MySql(p) => SCHEMA.baseline(p, server).await,
        stowage_tests::Kind::Sqlite(p) => SCHEMA.baseline(p, server).await,
    }
}

/// Tables of another application's beside the migrations: refused by
/// default, applied beside with `Policy::Allow`.
async fn tables_of_another_application_are_allowed_on_request(backend: Backend) {
    let db = fresh(backend, "shared").await;
    native::client(backend, &db.url, "CREATE TABLE other_app (id INTEGER);");
    let pool = db.pool().await;
    let error = pool.run(&SCHEMA).await.unwrap_err();
    assert!(
        matches!(&error, stowage::Error::ExistingSchema { objects, .. } if objects.len() == 1 && objects[0].ends_with("other_app")),
        "{error:?}"
    );
    let allowing = SCHEMA.clone().with_existing_schema(stowage::Policy::Allow);
    assert_eq!(
        stowage_tests::versions(&pool.run(&allowing).await.unwrap()),
        [1, 2, 3]
    );
    pool.close().await;
}

on_every_backend!(
    a_database_built_otherwise_is_baselined,
    tables_of_another_application_are_allowed_on_request,
    dump_round_trips_at_every_version,
    every_kind_is_read,
    the_schema_file_is_kept_current,
    no_drift_at_any_version,
    hand_changes_are_drift,
    drift_uses_the_snapshot_of_its_version,
    the_schema_snapshot_is_kept_current
);
