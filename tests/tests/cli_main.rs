//! `stowage::cli::main` for applications without clap: `app migrate <sub>`
//! and `app <sub>` both work, with the documented exit codes.

use std::process::Command;

const APP: &str = env!("CARGO_BIN_EXE_stowage-test-cli");

fn run(url: &str, args: &[&str]) -> (i32, String, String) {
    run_with(args, |command| command.env("DATABASE_URL", url))
}

/// Run the application with `args`, its environment set by `env`: the
/// exit code, stdout and stderr.
fn run_with(
    args: &[&str],
    env: impl FnOnce(&mut Command) -> &mut Command,
) -> (i32, String, String) {
    let output = env(Command::new(APP).args(args)).output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn main_parses_the_process_command_line() {
    let path = std::env::temp_dir().join(format!("stowage-cli-main-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let (code, stdout, stderr) = run(&url, &["migrate", "up", "--to", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("applied 2 migrations"), "{stdout}");
    let (code, stdout, _) = run(&url, &["status"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("2 pending"), "{stdout}");
    let (code, _, stderr) = run(&url, &["migrate", "sideways"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run("", &["status"]);
    assert_eq!(code, 2, "an empty DATABASE_URL is a usage error: {stderr}");
    std::fs::remove_file(path).unwrap();
}

/// `app migrate adopt --from sqlx` takes over a history sqlx kept; `status`
/// says which rows came from it.
#[tokio::test]
async fn adopt_takes_over_a_history_from_the_command_line() {
    let path = std::env::temp_dir().join(format!("stowage-cli-adopt-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    std::fs::File::create(&path).unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/operate/sqlite");
    let sqlx = sqlx::migrate::Migrator::new(folder).await.unwrap();
    sqlx.run(&pool).await.unwrap();
    pool.close().await;

    let (code, _, stderr) = run(&url, &["migrate", "adopt", "--from", "flyway"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("sqlx, diesel or refinery"), "{stderr}");
    let (code, _, stderr) = run(&url, &["migrate", "adopt", "--from", "diesel"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("__diesel_schema_migrations"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    let (code, stdout, stderr) = run(&url, &["migrate", "adopt", "--from", "sqlx"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("took over 4 migrations from sqlx's _sqlx_migrations; now at version 4"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&url, &["status"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("add email (imported from sqlx)"),
        "{stdout}"
    );
    assert!(stdout.contains("0 pending"), "{stdout}");
    let (code, _, stderr) = run(&url, &["migrate", "adopt", "--from", "sqlx"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("already holds 4 migrations"), "{stderr}");
    std::fs::remove_file(path).unwrap();
}

/// Without `DATABASE_URL`, the URL comes from the file `DATABASE_URL_FILE`
/// names, as Docker and Kubernetes secrets are mounted; a file that cannot
/// be read is named in the error, and its contents are never shown.
#[test]
fn the_url_comes_from_a_secret_file() {
    let dir = std::env::temp_dir().join(format!("stowage-cli-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("app.db");
    let secret = dir.join("database_url");
    std::fs::write(&secret, format!("sqlite://{}\n", db.display())).unwrap();
    let with_file = |file: &std::path::Path, args: &[&str]| {
        run_with(args, |command| {
            command
                .env_remove("DATABASE_URL")
                .env("DATABASE_URL_FILE", file)
        })
    };
    let (code, stdout, stderr) = with_file(&secret, &["migrate", "up"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("applied 4 migrations"), "{stdout}");
    assert!(db.exists());

    let missing = dir.join("no_such_secret");
    let (code, _, stderr) = with_file(&missing, &["status"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("DATABASE_URL_FILE=") && stderr.contains("no_such_secret"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `check` exits 0 only at the binary's head with nothing off, and with a
/// code of its own for each other state; `up --to` a version the binary
/// does not have is refused.
#[tokio::test]
async fn check_gives_a_code_for_each_state() {
    let path = std::env::temp_dir().join(format!("stowage-cli-check-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let (code, _, stderr) = run(&url, &["migrate", "up", "--to", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(&url, &["check"]);
    assert_eq!(
        (code, stdout.trim()),
        (
            4,
            "not ready: 2 migrations pending; the sqlite database is at version 2"
        )
    );

    let (code, stdout, stderr) = run(&url, &["up", "--to", "42"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr
            .contains("version 42 is not one of this binary's sqlite migrations (its newest is 4)"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&url, &["up"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(&url, &["check"]);
    assert_eq!(
        (code, stdout.trim()),
        (
            0,
            "ok: the sqlite database is at version 4, this binary's head"
        )
    );

    // Each state on top of the last: the most serious one gives the code.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let states: [(&str, i32); 3] = [
        (
            "INSERT INTO stowage_migrations (version, description, checksum, chain, state, applied_by) \
             VALUES (99, 'from a newer binary', x'00', x'00', 'applied', 'test')",
            7,
        ),
        (
            "UPDATE stowage_migrations SET checksum = x'00' WHERE version = 3",
            6,
        ),
        (
            "UPDATE stowage_migrations SET state = 'failed' WHERE version = 4",
            5,
        ),
    ];
    for (sql, expected) in states {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
        let (code, stdout, _) = run(&url, &["check"]);
        assert_eq!(code, expected, "{sql}: {stdout}");
    }
    pool.close().await;
    std::fs::remove_file(path).unwrap();
}

/// `stamp` to an older version says which history rows it removed, and
/// that their SQL stays applied.
#[test]
fn stamp_to_an_older_version_says_what_it_removed() {
    let path = std::env::temp_dir().join(format!("stowage-cli-stamp-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let (code, _, stderr) = run(&url, &["up"]);
    assert_eq!(code, 0, "{stderr}");
    // Without --yes: says what it would remove, changes nothing.
    let (code, stdout, stderr) = run(&url, &["stamp", "2"]);
    assert_eq!(code, 2, "{stdout}");
    assert_eq!(
        stderr.trim(),
        "nothing changed: this stamp removes the history rows of 2 migrations (3, 4) without \
         reverting their SQL; run it again with --yes"
    );
    let (_, status, _) = run(&url, &["status"]);
    assert!(status.contains("at version 4; 0 pending"), "{status}");
    // Forwards needs no --yes.
    let (code, _, stderr) = run(&url, &["stamp", "head"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run(&url, &["stamp", "2", "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "stamped 0 migrations as applied without running them, and removed the history rows of \
         2 migrations above version 2 (3, 4) without reverting their SQL; now at version 2"
    );
    std::fs::remove_file(path).unwrap();
}

/// While the server is unreachable the CLI says so on stderr (never with
/// the password), then gives up with the error after its timeout.
#[test]
fn waiting_for_the_server_is_said() {
    let port = stowage_tests::free_port();
    let url = format!("postgres://app:hunter2secret@127.0.0.1:{port}/app");
    let (code, _, stderr) = run(&url, &["status", "--connect-timeout", "2"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "waiting for the database at postgres://app:***@127.0.0.1:{port}/app"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("error: cannot connect"), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

/// `status --json`: a versioned schema with the head, the current version
/// and the pending count; per migration its checksums, RFC 3339 time, and
/// for a failed one its error and statement.
#[tokio::test]
async fn status_json_has_what_a_machine_needs() {
    let path = std::env::temp_dir().join(format!("stowage-cli-json-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let (code, _, stderr) = run(&url, &["up", "--to", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "UPDATE stowage_migrations SET state = 'failed', failed_statement = 1, \
         error = 'disk full' WHERE version = 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let (code, stdout, stderr) = run(&url, &["status", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(
        (json["head"].as_i64(), json["current"].as_i64()),
        (Some(4), Some(1))
    );
    assert_eq!(json["pending"], 2);
    let first = &json["migrations"][0];
    let checksum = first["checksum"].as_str().unwrap();
    assert_eq!(checksum.len(), 64);
    assert_eq!(first["applied_checksum"], checksum);
    let at = first["applied_at"].as_str().unwrap();
    let shape: String = at
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert!(
        shape.starts_with("dddd-dd-ddTdd:dd:dd") && shape.ends_with('Z'),
        "{at}"
    );
    let failed = &json["migrations"][1];
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["error"], "disk full");
    assert_eq!(failed["failed_statement"], 1);
    assert_eq!(json["migrations"][2]["applied_at"], serde_json::Value::Null);
    std::fs::remove_file(path).unwrap();
}

/// `up` says on stderr when each migration starts and ends (with its
/// duration), with the file under `--verbose`; `--quiet` says only the
/// result. stdout holds the summary either way.
#[test]
fn up_says_each_migration_as_it_goes() {
    let path = std::env::temp_dir().join(format!("stowage-cli-progress-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let (code, stdout, stderr) = run(&url, &["up", "--to", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert_eq!(lines[0], "applying 1 create users");
    assert!(
        lines[1].starts_with("applied 1 create users in "),
        "{stderr}"
    );
    assert_eq!(lines[2], "applying 2 create posts");
    assert!(
        lines[3].starts_with("applied 2 create posts in "),
        "{stderr}"
    );
    assert!(stdout.starts_with("applied 2 migrations"), "{stdout}");

    let (code, stdout, stderr) = run(&url, &["up", "--quiet", "--to", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "", "quiet");
    assert!(stdout.starts_with("applied 1 migration"), "{stdout}");

    let (code, _, stderr) = run(&url, &["up", "-v"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("connected to sqlite://"), "{stderr}");
    assert!(
        stderr.contains("applying 4 add email (") && stderr.contains("4_add_email.up.sql)"),
        "{stderr}"
    );
    let (_, _, stderr) = run(&url, &["up", "--quiet", "--verbose"]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    std::fs::remove_file(path).unwrap();
}

/// `show <version>` prints the embedded SQL, up then down, with no
/// database at all; an unknown version is an error that lists the known ones.
#[test]
fn show_prints_a_migrations_sql_without_a_database() {
    let (code, stdout, stderr) = run_with(&["show", "2"], |c| c.env_remove("DATABASE_URL"));
    assert_eq!(code, 0, "{stderr}");
    // One file per database the binary has a set for, each up then down.
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/operate");
    for dialect in ["mysql", "postgres", "sqlite"] {
        let file = |way| format!("{dialect}/2_create_posts.{way}.sql");
        let sql = |way| std::fs::read_to_string(folder.join(file(way))).unwrap();
        let up = format!(
            "-- 2 create posts: up ({})\n{}\n",
            file("up"),
            sql("up").trim_end()
        );
        let down = format!("-- 2 create posts: down\n{}\n", sql("down").trim_end());
        let after_up = stdout.find(&up).map(|at| &stdout[at + up.len()..]);
        assert!(
            after_up.is_some_and(|rest| rest.starts_with(&format!("\n{down}"))),
            "{dialect}: {stdout}"
        );
    }
    let (code, _, stderr) = run_with(&["show", "99"], |c| c.env_remove("DATABASE_URL"));
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "error: this binary has no migration 99; its versions: 1, 2, 3, 4"
    );
}
