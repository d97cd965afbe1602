//! The SQL people really write, run as the database's own client would run
//! it: SQLite's table rebuild, MySQL routines and `DELIMITER` scripts,
//! PostgreSQL dump-style session settings.

use sqlx::Row;
use stowage::{Error, Migrator};
use stowage_tests::{Backend, Kind, fresh, versions};

/// SQLite's documented procedure for rebuilding a table keeps the rows of
/// `ON DELETE CASCADE` children: the migration runs with foreign keys off
/// (set outside the transaction, where the pragma has effect), and the
/// connection has them on again afterwards.
#[tokio::test]
async fn sqlite_table_rebuild_keeps_cascading_children() {
    static REBUILD: Migrator = stowage::embed_migrations!("fixtures/sqlite_rebuild");
    let db = fresh(Backend::Sqlite, "rebuild").await;
    let url = format!("{}?mode=rwc", db.url);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(before, 1, "sqlx connects with foreign keys on");

    assert_eq!(versions(&REBUILD.run(&mut conn).await.unwrap()), [1, 2]);
    let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM child")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(children, 2, "the rebuild must not cascade into child");
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM parent ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(names, ["one", ""]);

    let after: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, 1, "foreign keys are on again after the run");
    let orphan = sqlx::query("INSERT INTO child (id, parent_id) VALUES (9, 99)")
        .execute(&mut conn)
        .await;
    assert!(orphan.is_err(), "the rebuilt parent is still enforced");
}

/// A migration that leaves a row violating a foreign key is refused, naming
/// the table and rowid, and rolled back: nothing of it stays.
#[tokio::test]
async fn sqlite_foreign_key_violation_is_refused() {
    static ORPHAN: Migrator = stowage::embed_migrations!("fixtures/sqlite_orphan");
    let db = fresh(Backend::Sqlite, "orphan").await.pool().await;
    let error = db.run(&ORPHAN).await.unwrap_err();
    let Error::ForeignKeyViolation {
        version: 2,
        source_path,
        violations,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(source_path, "2_orphan_child.sql");
    assert_eq!(violations, &["`child` rowid 4 references `parent`"]);
    let message = error.to_string();
    assert!(message.contains("rolled back"), "{message}");
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM child").await,
        2,
        "migration 2 left nothing"
    );
    assert_eq!(db.i64("SELECT COUNT(*) FROM parent").await, 2);
    assert_eq!(
        db.history().await,
        [(1, "applied".to_owned(), None)],
        "migration 1 is kept, migration 2 not recorded"
    );
    let Kind::Sqlite(pool) = db.kind() else {
        unreachable!()
    };
    let on: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(on, 1, "foreign keys are on again after a failed run");
}

static ROUTINES: Migrator = stowage::embed_migrations!("fixtures/mysql_routines");

/// The definitions the server keeps of the database's routines and
/// triggers, by name; each must be a piece of the migration files, with
/// nothing of stowage's in it.
async fn stored_as_written(pool: &sqlx::MySqlPool) -> Vec<String> {
    let files: String = ROUTINES.iter().map(|m| m.up_sql()).collect();
    let definitions: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(ROUTINE_NAME AS CHAR), CAST(ROUTINE_DEFINITION AS CHAR) FROM information_schema.ROUTINES \
         WHERE ROUTINE_SCHEMA = DATABASE() \
         UNION ALL SELECT CAST(TRIGGER_NAME AS CHAR), CAST(ACTION_STATEMENT AS CHAR) FROM information_schema.TRIGGERS \
         WHERE TRIGGER_SCHEMA = DATABASE()",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (name, definition) in &definitions {
        assert!(
            files.contains(definition.as_str()) && !definition.contains("stowage"),
            "{name} is stored as\n{definition}"
        );
    }
    let mut names: Vec<String> = definitions.into_iter().map(|(name, _)| name).collect();
    names.sort_unstable();
    names
}

/// Compound routine bodies written without `DELIMITER` (`IF … END IF`,
/// `CASE … END CASE` beside the `IF()` function, labelled loops, handlers)
/// are stored exactly as written, and calling one writes only what it says.
#[tokio::test]
async fn mysql_routine_bodies_are_not_rewritten() {
    let db = fresh(Backend::MySql, "bodies").await.pool().await;
    assert_eq!(versions(&db.run_to(&ROUTINES, 3).await.unwrap()), [1, 2, 3]);
    let Kind::MySql(pool) = db.kind() else {
        unreachable!()
    };
    assert_eq!(stored_as_written(pool).await, ["classify", "p"]);

    // The plain statements around them, cut where the server cuts them.
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM t WHERE n = 11").await,
        1,
        "10--1"
    );
    let messages: Vec<String> = sqlx::query_scalar("SELECT msg FROM audit ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(messages, ["it's; \"quoted\"", "back\\slash; and \" quote"]);

    // Calling p() writes t, and nothing else.
    let history = db.history().await;
    db.execute("CALL p()").await;
    assert_eq!(db.i64("SELECT COUNT(*) FROM t WHERE n IN (1, 2)").await, 2);
    assert_eq!(db.history().await, history);
    // The procedure's OUT parameter is a session variable: one connection.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql("CALL classify(-500, @label)")
        .execute(&mut *conn)
        .await
        .unwrap();
    let label: String = sqlx::query_scalar("SELECT @label")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(label, "very negative");
}

/// A script written as mysqldump and tutorials write it (`DELIMITER ;;`,
/// `//`, `$$`, version comments) runs as the mysql client runs it: the
/// `DELIMITER` lines are never sent, each piece goes whole.
#[tokio::test]
async fn mysql_delimiter_scripts_run_as_the_client_runs_them() {
    let db = fresh(Backend::MySql, "delimiter").await.pool().await;
    assert_eq!(versions(&db.run(&ROUTINES).await.unwrap()), [1, 2, 3, 4]);
    let Kind::MySql(pool) = db.kind() else {
        unreachable!()
    };
    assert_eq!(
        stored_as_written(pool).await,
        ["classify", "fill", "p", "t_audit", "twice"]
    );
    assert_eq!(db.i64("SELECT twice(4)").await, 8);
    assert_eq!(db.i64("SELECT a FROM scratch").await, 42, "CALL fill(21)");
    db.execute("INSERT INTO t VALUES (5)").await;
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM audit WHERE msg = 't got 5'")
            .await,
        1,
        "the trigger fires"
    );
}

static SESSION: Migrator = stowage::embed_migrations!("fixtures/session");

/// A pg_dump-style preamble (`standard_conforming_strings = off`, an empty
/// `search_path`) changes the session for the migrations after it, as psql
/// running the files in order would; stowage's own statements still work
/// and land in the history table where it was, and the pool gets no
/// connection with the changed settings back.
#[tokio::test]
async fn postgres_session_settings_stay_out_of_bookkeeping_and_the_pool() {
    let db = fresh(Backend::Postgres, "session").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    assert_eq!(versions(&SESSION.run(&pool).await.unwrap()), [1, 2]);
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM public.stowage_migrations WHERE state = 'applied'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(rows, 2);
    let body: String = sqlx::query_scalar("SELECT body FROM public.notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(body, "written under the dump's settings");
    let settings: (String, String) = sqlx::query_as(
        "SELECT current_setting('standard_conforming_strings'), current_setting('search_path')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(settings, ("on".to_owned(), "\"$user\", public".to_owned()));
    assert!(SESSION.run(&pool).await.unwrap().applied().is_empty());
}

/// The same on MySQL: `sql_mode` with `ANSI_QUOTES` and
/// `NO_BACKSLASH_ESCAPES`, another time zone, `autocommit`, and `USE` of another database
/// leave stowage's bookkeeping in the database it started in (where the next
/// migration starts too), and the pool's connections as they were.
#[tokio::test]
async fn mysql_session_settings_stay_out_of_bookkeeping_and_the_pool() {
    let db = fresh(Backend::MySql, "session").await;
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    let outcome = SESSION.run(&pool).await;
    let elsewhere: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = 'stowage_session_elsewhere' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    sqlx::raw_sql("DROP DATABASE IF EXISTS stowage_session_elsewhere")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(versions(&outcome.unwrap()), [1, 2]);
    assert!(
        elsewhere.is_empty(),
        "each migration starts in the database the run started in: {elsewhere:?}"
    );
    let more: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM more_notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(more, 0, "migration 2 made its table here");
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM stowage_migrations WHERE state = 'applied'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 2, "the history stayed in the database it started in");
    let body: String = sqlx::query_scalar("SELECT body FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(body, "a\\bc");
    let (mode, database, zone): (String, String, String) =
        sqlx::query_as("SELECT @@SESSION.sql_mode, DATABASE(), @@SESSION.time_zone")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!mode.contains("ANSI_QUOTES"), "{mode}");
    assert_eq!(database, db.name);
    assert_ne!(zone, "+05:00");
    assert!(SESSION.run(&pool).await.unwrap().applied().is_empty());
}

static MISSING_TABLE: Migrator = stowage::embed_migrations!("fixtures/position/missing");
static TYPO: Migrator = stowage::embed_migrations!("fixtures/position/syntax");

/// A failing statement is named by its file, its line in the file and an
/// excerpt of it, with the server's message: never a line of the server's
/// own source code, never stowage's SQL.
async fn errors_point_at_the_users_file(backend: Backend) {
    for (migrator, file, excerpt) in [
        (
            &MISSING_TABLE,
            "2_missing_table.sql",
            "INSERT INTO no_such_table VALUES (1)",
        ),
        (&TYPO, "2_typo.sql", "SELEC oops FROM notes"),
    ] {
        let db = fresh(backend, "position").await.pool().await;
        let error = db.run(migrator).await.unwrap_err();
        let Error::MigrationFailed {
            version: 2,
            line,
            excerpt: shown,
            ..
        } = &error
        else {
            panic!("{error:?}")
        };
        let message = error.to_string();
        let chain = format!("{error:?}");
        assert!(chain.starts_with(&message), "{chain}");
        let lines: Vec<&str> = chain
            .split(" at line ")
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or("")
            })
            .collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|line| *line == "3"),
            "the debug chain names no line but the file's: {chain}"
        );
        assert!(
            chain.ends_with(&format!(
                "{message}\n  caused by: the database's error (code {})",
                code_of(&error)
            )),
            "the cause without stowage's SQL: {chain}"
        );
        assert_eq!(*line, Some(3), "{message}");
        assert_eq!(shown.as_deref(), Some(excerpt), "{message}");
        assert!(
            message.contains(&format!("{file}) failed at line 3 (`{excerpt}`)")),
            "{message}"
        );
        assert!(!message.contains("stowage_migrations"), "{message}");
        assert!(
            !message.contains(" at line 1") && !message.contains("line 1188"),
            "no line but the file's: {message}"
        );
        assert!(
            message.contains("no_such_table") || message.to_lowercase().contains("syntax"),
            "the server's own words: {message}"
        );
    }
}

stowage_tests::on_every_backend!(errors_point_at_the_users_file);

/// The code (SQLSTATE, or SQLite's result code) of the database's error under `error`.
fn code_of(error: &Error) -> String {
    std::error::Error::source(error)
        .and_then(|cause| cause.downcast_ref::<sqlx::Error>())
        .and_then(sqlx::Error::as_database_error)
        .and_then(|db| db.code())
        .unwrap()
        .into_owned()
}

/// `COPY … FROM stdin`, as pg_dump writes data, needs psql to send the rows
/// that follow it: it is refused by name and line before anything runs.
#[tokio::test]
async fn postgres_copy_from_stdin_is_refused_before_anything_runs() {
    static COPY: Migrator = stowage::embed_migrations!("fixtures/copy_stdin");
    let db = fresh(Backend::Postgres, "copy").await.pool().await;
    let error = db.run(&COPY).await.unwrap_err();
    let Error::UnsupportedStatement {
        version: 2,
        line: 4,
        excerpt,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(excerpt, "COPY public.t (a, b) FROM stdin");
    let message = error.to_string();
    assert!(
        message.contains("2_data.sql")
            && message.contains("INSERT")
            && message.contains("nothing was applied"),
        "{message}"
    );
    assert!(
        db.tables().await.is_empty(),
        "not even migration 1, nor the history table"
    );
}

/// A psql meta-command (`\connect`, as dump scripts hold) is psql's, not
/// the server's: refused by name and line before anything runs, as `COPY
/// … FROM stdin` is.
#[tokio::test]
async fn postgres_psql_meta_commands_are_refused_before_anything_runs() {
    static META: Migrator = stowage::embed_migrations!("fixtures/psql_meta");
    let db = fresh(Backend::Postgres, "psql_meta").await.pool().await;
    let error = db.run(&META).await.unwrap_err();
    let Error::UnsupportedStatement {
        version: 2,
        line: 2,
        excerpt,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(excerpt, "\\connect appdb");
    let message = error.to_string();
    assert!(
        message.contains("2_connect.sql") && message.contains("psql meta-command"),
        "{message}"
    );
    assert!(db.tables().await.is_empty(), "{:?}", db.tables().await);
}

/// A statement PostgreSQL refuses inside a transaction: the error says how
/// to run the migration outside one, and nothing of it stays.
#[tokio::test]
async fn postgres_concurrently_says_how_to_run_outside_a_transaction() {
    static CONCURRENTLY: Migrator = stowage::embed_migrations!("fixtures/concurrently");
    let db = fresh(Backend::Postgres, "concurrently").await.pool().await;
    let message = db.run(&CONCURRENTLY).await.unwrap_err().to_string();
    assert!(
        message.contains("cannot run inside a transaction block")
            && message.contains("put `-- stowage:no-transaction` at the top of its file"),
        "{message}"
    );
    assert_eq!(db.tables().await, ["stowage_migrations"]);
}

/// A routine keeps the `sql_mode` of the session that created it, for
/// good: MySQL migrations run under the server's own default, as the mysql
/// client's would, not under the one sqlx gives its connections
/// (`PIPES_AS_CONCAT`, which turns `||` into concatenation); the session's
/// own is back afterwards.
#[tokio::test]
async fn mysql_routines_get_the_servers_sql_mode() {
    static SQL_MODE: Migrator = stowage::embed_migrations!("fixtures/sql_mode");
    let db = fresh(Backend::MySql, "sql_mode").await;
    let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let (session, global): (String, String) =
        sqlx::query_as("SELECT @@SESSION.sql_mode, @@GLOBAL.sql_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_ne!(session, global, "sqlx sets a sql_mode of its own");
    SQL_MODE.run(&mut conn).await.unwrap();
    let stored: String = sqlx::query_scalar(
        "SELECT CAST(SQL_MODE AS CHAR) FROM information_schema.ROUTINES \
         WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = 'joined'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(stored, global);
    let after: String = sqlx::query_scalar("SELECT @@SESSION.sql_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, session, "the lent connection's own sql_mode is back");
}

/// A `no-transaction` migration goes statement by statement, each parsed by
/// PostgreSQL under the settings the ones before it made: after
/// `standard_conforming_strings = off`, `'it\'s; one'` is one string, and
/// stowage cuts the statements where the server reads them.
#[tokio::test]
async fn postgres_statements_follow_standard_conforming_strings() {
    static CONFORMING: Migrator = stowage::embed_migrations!("fixtures/conforming");
    let db = fresh(Backend::Postgres, "conforming").await.pool().await;
    assert_eq!(versions(&db.run(&CONFORMING).await.unwrap()), [1, 2]);
    let Kind::Postgres(pool) = db.kind() else {
        unreachable!()
    };
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM notes ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(bodies, ["it's; one", "back\\slash"]);
}

/// After an error, the history row never claims more than stayed: a DDL
/// statement with a syntax error never reaches its implicit commit, so the
/// INSERT before it was rolled back, and the row says one statement.
#[tokio::test]
async fn mysql_failed_row_claims_only_what_stayed() {
    static PROGRESS: Migrator = stowage::embed_migrations!("fixtures/mysql_progress");
    let db = fresh(Backend::MySql, "progress").await.pool().await;
    let error = db.run(&PROGRESS).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::MigrationFailed {
                version: 1,
                statement: Some(2),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        db.i64("SELECT COUNT(*) FROM t").await,
        0,
        "the INSERT was rolled back"
    );
    assert_eq!(db.history().await, [(1, "failed".to_owned(), Some(1))]);
}

/// A connection that does not enforce foreign keys is not checked either
/// (its database may hold orphans on purpose), and stays as it was.
#[tokio::test]
async fn sqlite_without_enforcement_is_not_checked() {
    static ORPHAN: Migrator = stowage::embed_migrations!("fixtures/sqlite_orphan");
    let db = fresh(Backend::Sqlite, "not_enforced").await;
    let options: sqlx::sqlite::SqliteConnectOptions = db.url.parse().unwrap();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(
        &options.create_if_missing(true).foreign_keys(false),
    )
    .await
    .unwrap();
    assert_eq!(versions(&ORPHAN.run(&mut conn).await.unwrap()), [1, 2]);
    let on: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(on, 0);
}
