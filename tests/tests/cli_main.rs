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

    // With the default minute to wait, the first line comes after the first
    // attempt, not after a pause: it says how long it has waited so far,
    // under a second.
    use std::io::BufRead;
    let mut waiting = Command::new(APP)
        .arg("status")
        .env("DATABASE_URL", &url)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(waiting.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    waiting.kill().unwrap();
    waiting.wait().unwrap();
    let so_far = first
        .trim_end()
        .split("; ")
        .find_map(|part| part.strip_suffix(" so far, giving up after 60s"))
        .unwrap_or_else(|| panic!("{first}"));
    assert!(
        so_far.ends_with("ms") || so_far.ends_with("µs") || so_far.ends_with("ns"),
        "{first}"
    );
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
    let mut lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    assert_eq!(
        lines.remove(0),
        format!("created the database {url}, which did not exist")
    );
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

/// `up` says at once when it waits for the migration lock and who holds
/// it, then applies once the holder lets go.
#[tokio::test(flavor = "multi_thread")]
async fn up_says_while_it_waits_for_the_lock() {
    use std::io::BufRead;
    use stowage_tests::{Backend, fresh};
    for backend in [Backend::Postgres, Backend::MySql] {
        let fresh = fresh(backend, "cli lock wait").await;
        let holder = fresh.pool().await;
        let held = holder.hold_migration_lock().await;
        let mut up = Command::new(APP)
            .args(["migrate", "up"])
            .env("DATABASE_URL", &fresh.url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(up.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        let expected = match backend {
            Backend::Postgres => "waiting for the migration lock, held by pid ",
            _ => "waiting for the migration lock, held by connection ",
        };
        assert!(first.starts_with(expected), "{backend:?}: {first}");
        // The holder's connection closed: the lock is free.
        drop(held);
        holder.close().await;
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        let output = up.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{backend:?}: {rest}");
        assert!(stdout.contains("applied 4 migrations"), "{stdout}");
        assert!(rest.contains("applying 1 create users"), "{rest}");
    }
}

/// `wait` blocks, saying so, while the database is missing or behind, and
/// exits 0 once another process has migrated it; at its timeout it exits
/// 4, as `check` does for pending migrations.
#[test]
fn wait_returns_once_another_process_has_migrated() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("stowage-cli-wait-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("app.db").display());
    let mut waiting = Command::new(APP)
        .args(["migrate", "wait", "--timeout", "60"])
        .env("DATABASE_URL", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(waiting.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "waiting for the database to be created");

    let (code, _, up) = run(&url, &["up"]);
    assert_eq!(code, 0, "{up}");
    let output = waiting.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.trim(),
        "ok: the sqlite database is at version 4, this binary's head"
    );

    let behind = format!("sqlite://{}", dir.join("behind.db").display());
    let (code, _, stderr) = run(&behind, &["up", "--to", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run(&behind, &["wait", "--timeout", "1"]);
    assert_eq!(code, 4, "{stdout} {stderr}");
    assert!(
        stderr.starts_with("waiting for migrations: 2 migrations pending"),
        "{stderr}"
    );
    assert!(stdout.contains("gave up waiting"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A database that cannot be opened gets advice that fits it: a SQLite
/// file's path, a server database's name; never a server to start for a
/// file, nor a server to check for a mistyped name.
#[tokio::test]
async fn connection_advice_fits_the_case() {
    let missing =
        std::env::temp_dir().join(format!("stowage-cli-none-{}/x.db", std::process::id()));
    let (code, _, stderr) = run(&format!("sqlite://{}", missing.display()), &["status"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("check the file's path"), "{stderr}");
    assert!(!stderr.contains("server"), "{stderr}");
    for backend in [
        stowage_tests::Backend::Postgres,
        stowage_tests::Backend::MySql,
    ] {
        let server = stowage_tests::server_url(backend);
        let url = stowage_tests::with_database(&server, "stowage_no_such_database");
        let (code, _, stderr) = run(&url, &["status"]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("the database does not exist")
                && stderr.contains("check the database's name"),
            "{stderr}"
        );
        assert!(!stderr.contains("server is running"), "{stderr}");
        // A user the server does not know: the user is what to check, and
        // no line of the server's C source reads as a line of the URL.
        let (scheme, rest) = url.split_once("://").unwrap();
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        let stranger = format!("{scheme}://stowage_no_such_user@{host}");
        let (code, _, stderr) = run(&stranger, &["status"]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("check the user name and password in the URL"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("database's name") && !stderr.contains(" at line "),
            "{stderr}"
        );
        // `up` creates it, and says so.
        let name = format!("stowage_cli_created_{}", std::process::id());
        let url = stowage_tests::with_database(&server, &name);
        let (code, _, stderr) = run(&url, &["up"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            stderr.lines().next(),
            Some(format!("created the database {url}, which did not exist").as_str())
        );
        let (code, _, stderr) = run(&url, &["up"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(!stderr.contains("created"), "{stderr}");
        drop_database(backend, &server, &name).await;
    }
}

async fn drop_database(backend: stowage_tests::Backend, server: &str, name: &str) {
    let sql = format!("DROP DATABASE {name}");
    match backend {
        stowage_tests::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(server).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("{sql} WITH (FORCE)")))
                .execute(&pool)
                .await
                .unwrap();
        }
        _ => {
            let pool = sqlx::MySqlPool::connect(server).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

/// `--json` on every subcommand: one object on stdout, in one schema (the
/// status after the command, with `command`, `exit_code`, `message`,
/// `error` and the command's own fields), also for refusals and errors.
#[test]
fn every_subcommand_speaks_json() {
    let path = std::env::temp_dir().join(format!("stowage-cli-json-all-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let json = |args: &[&str], env_url: &str| {
        let mut args = args.to_vec();
        args.push("--json");
        let (code, stdout, stderr) = run(env_url, &args);
        let value: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("{args:?}: {error}: {stdout} {stderr}"));
        assert_eq!(value["schema"], 1, "{args:?}");
        assert_eq!(value["command"], args[0], "{args:?}");
        assert_eq!(value["exit_code"], code, "{args:?}");
        (code, value)
    };
    let versions = |value: &serde_json::Value| -> Vec<i64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["version"].as_i64().unwrap())
            .collect()
    };

    let (code, up) = json(&["up", "--to", "2"], &url);
    assert_eq!(code, 0);
    assert_eq!(versions(&up["applied"]), [1, 2]);
    assert_eq!(
        (up["head"].as_i64(), up["current"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(up["pending"], 2);
    assert_eq!(up["error"], serde_json::Value::Null);
    assert_eq!(up["migrations"][0]["state"], "applied");

    let (code, status) = json(&["status"], &url);
    assert_eq!((code, &status["pending"]), (0, &serde_json::json!(2)));
    let (code, check) = json(&["check"], &url);
    assert_eq!(code, 4);
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .starts_with("not ready: 2 migrations pending")
    );
    let (code, _) = json(&["wait", "--timeout", "0"], &url);
    assert_eq!(code, 4);
    let (code, plan) = json(&["plan"], &url);
    assert_eq!(code, 0);
    assert_eq!(versions(&plan["plan"]), [3, 4]);
    assert_eq!(plan["plan"][0]["direction"], "up");
    let (code, verify) = json(&["verify"], &url);
    assert_eq!((code, verify["problems"].as_array().unwrap().len()), (0, 0));

    let (code, refused) = json(&["stamp", "1"], &url);
    assert_eq!(code, 2);
    assert!(
        refused["error"].as_str().unwrap().contains("--yes"),
        "{refused}"
    );
    let (code, refused) = json(&["down"], &url);
    assert_eq!(code, 2);
    assert_eq!(versions(&refused["plan"]), [2]);
    assert_eq!(refused["plan"][0]["direction"], "down");
    let (code, down) = json(&["down", "--yes"], &url);
    assert_eq!(code, 0);
    assert_eq!(versions(&down["reverted"]), [2]);
    assert_eq!(down["current"], 1);

    let (code, stamped) = json(&["stamp", "head"], &url);
    assert_eq!(code, 0);
    assert_eq!(versions(&stamped["stamped"]), [2, 3, 4]);
    assert_eq!(stamped["pending"], 0);
    let (code, repaired) = json(&["repair", "--accept-checksums"], &url);
    assert_eq!((code, &repaired["changed"]), (0, &serde_json::json!(0)));
    let (code, adopt) = json(&["adopt", "--from", "sqlx"], &url);
    assert_eq!(code, 1);
    assert!(
        adopt["error"]
            .as_str()
            .unwrap()
            .contains("_sqlx_migrations"),
        "{adopt}"
    );

    let (code, show) = json(&["show", "2"], "");
    assert_eq!(code, 0);
    assert!(
        show["migrations"][0]["up"]
            .as_str()
            .unwrap()
            .contains("CREATE TABLE"),
        "{show}"
    );
    let (code, missing) = json(&["status"], "");
    assert_eq!(code, 2);
    assert!(
        missing["error"].as_str().unwrap().contains("DATABASE_URL"),
        "{missing}"
    );
    std::fs::remove_file(path).unwrap();
}

/// Help lists the options every subcommand takes under their own heading,
/// apart from the subcommand's own, and shows none as required that the
/// environment can supply.
#[test]
fn help_groups_the_global_options() {
    let (code, stdout, _) = run("", &["up", "--help"]);
    assert_eq!(code, 0);
    let (own, global) = stdout.split_once("Global options:").unwrap();
    assert!(own.contains("--to <TO>"), "{stdout}");
    for option in [
        "--database-url",
        "--connect-timeout",
        "--quiet",
        "--verbose",
        "--json",
    ] {
        assert!(global.contains(option), "{option}: {stdout}");
        assert!(!own.contains(option), "{option}: {stdout}");
    }
    assert!(global.contains("[env: DATABASE_URL]"), "{stdout}");
    assert!(!stdout.contains("required"), "{stdout}");
    let (_, usage, _) = run("", &["--help"]);
    assert!(
        usage.contains("Usage: stowage-test-cli [OPTIONS] <COMMAND>"),
        "{usage}"
    );
    for command in [
        "up", "down", "status", "stamp", "verify", "check", "wait", "plan", "adopt", "show",
        "repair",
    ] {
        assert!(
            usage.contains(&format!("\n  {command} ")),
            "{command}: {usage}"
        );
    }
}

/// A long migration is said to be still applying every 5 s; with the
/// application's own `tracing` subscriber on, sqlx's slow-statement warning
/// (which would dump the whole round trip, history row included) stays out
/// of the CLI's output.
#[tokio::test]
async fn a_long_migration_is_said_to_be_still_applying() {
    let fresh = stowage_tests::fresh(stowage_tests::Backend::Postgres, "cli still").await;
    let (code, stdout, stderr) = run_with(&["up"], |command| {
        command
            .env("DATABASE_URL", &fresh.url)
            .env("STOWAGE_TEST_SET", "slow")
            .env("STOWAGE_TEST_TRACING", "1")
    });
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("applied 1 migration"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.first(), Some(&"applying 1 sleep"), "{stderr}");
    assert!(
        lines.contains(&"  still applying 1 sleep (5 s)"),
        "{stderr}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("applied 1 sleep in 6.")),
        "{stderr}"
    );
    assert!(!stderr.contains("slow statement"), "{stderr}");
    assert!(!stderr.contains("stowage_migrations"), "{stderr}");
}

/// A SQLite URL of a new file in the temporary folder, for `name`.
fn fresh_sqlite(name: &str) -> (std::path::PathBuf, String) {
    let path = std::env::temp_dir().join(format!("stowage-cli-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

/// `status --json | head`: a reader that goes away ends the output, not the
/// process with a panic.
#[test]
fn output_into_a_closed_pipe_does_not_panic() {
    let (path, url) = fresh_sqlite("pipe");
    assert_eq!(run(&url, &["up"]).0, 0);
    // The pipe's reading end is closed before the binary writes.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(APP)
        .args(["status", "--json"])
        .env("DATABASE_URL", &url)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    std::fs::remove_file(path).unwrap();
}

/// `--json` of a command that failed once connected holds the status, as
/// the README says, beside the error.
#[tokio::test]
async fn json_of_a_failed_command_holds_the_status() {
    let (path, url) = fresh_sqlite("json-error");
    assert_eq!(run(&url, &["up", "--to", "2"]).0, 0);
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE stowage_migrations SET checksum = x'00' WHERE version = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, stdout, _) = run(&url, &["up", "--json"]);
    assert_eq!(code, 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("checksum"),
        "{json}"
    );
    assert_eq!(json["current"], 2, "{json}");
    assert_eq!(json["migrations"][0]["state"], "modified", "{json}");
    assert_eq!(json["migrations"][2]["state"], "pending", "{json}");
    std::fs::remove_file(path).unwrap();
}

/// `check` has codes of its own for a pending migration `up` refuses (older
/// than the newest applied) and for a server it cannot reach, which it does
/// not wait for; a database not created yet is pending. `wait` does not
/// wait for what `up` refuses.
#[tokio::test]
async fn check_knows_what_up_refuses_and_does_not_wait_for_the_server() {
    // Migrations 1 and 3 applied by a binary without 2; this one has it.
    let (path, url) = fresh_sqlite("check-order");
    let with_set = |args: &[&str], name: &str| {
        run_with(args, |command| {
            command
                .env("DATABASE_URL", &url)
                .env("STOWAGE_TEST_SET", name)
        })
    };
    assert_eq!(with_set(&["up"], "gap").0, 0);
    let (code, stdout, _) = with_set(&["check"], "v1");
    assert_eq!(code, 8, "{stdout}");
    assert!(stdout.contains("older than the newest applied"), "{stdout}");
    let (code, _, stderr) = with_set(&["up"], "v1");
    assert_eq!(code, 1, "up refuses it: {stderr}");
    let started = std::time::Instant::now();
    let (code, _, _) = with_set(&["wait", "--timeout", "60"], "v1");
    assert_eq!(code, 8);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    std::fs::remove_file(path).unwrap();

    // Nothing listens on this port: one attempt, exit 9.
    let port = stowage_tests::free_port();
    let down = format!("postgres://app:secret@127.0.0.1:{port}/app");
    let started = std::time::Instant::now();
    let (code, _, stderr) = run(&down, &["check"]);
    assert_eq!(code, 9, "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "check waited {:?} for the server",
        started.elapsed()
    );
    assert!(!stderr.contains("secret"), "{stderr}");
    let (code, _, _) = run(&down, &["check", "--connect-timeout", "1"]);
    assert_eq!(code, 9);

    let server = stowage_tests::server_url(stowage_tests::Backend::Postgres);
    let missing = stowage_tests::with_database(&server, "stowage_no_such_database");
    let (code, _, stderr) = run(&missing, &["check"]);
    assert_eq!(code, 4, "{stderr}");
}

/// `down` without `--yes` prints the plan, then the note that refers to it.
#[test]
fn down_without_yes_says_its_note_after_the_plan() {
    let (path, url) = fresh_sqlite("down-note");
    assert_eq!(run(&url, &["up"]).0, 0);
    let (code, output) =
        stowage_tests::interleaved(Command::new(APP).args(["down"]).env("DATABASE_URL", &url));
    assert_eq!(code, Some(2), "{output}");
    let plan = output
        .find("-- down 4 add email")
        .unwrap_or_else(|| panic!("{output}"));
    let note = output
        .find("as above")
        .unwrap_or_else(|| panic!("{output}"));
    assert!(plan < note, "{output}");
    std::fs::remove_file(path).unwrap();
}

/// The time `up` says for each migration is the report's (its `--json`
/// `duration_ms`), not counting a slow callback around it.
#[test]
fn up_says_each_migration_with_the_reports_time() {
    let (path, url) = fresh_sqlite("durations");
    let (code, stdout, stderr) = run_with(&["up", "--json"], |command| {
        command
            .env("DATABASE_URL", &url)
            .env("STOWAGE_TEST_SET", "callbacks")
    });
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for applied in json["applied"].as_array().unwrap() {
        let label = format!(
            "applied {} {} in ",
            applied["version"],
            applied["description"].as_str().unwrap()
        );
        let said = stderr
            .lines()
            .find_map(|line| line.strip_prefix(&label))
            .unwrap_or_else(|| panic!("{label}: {stderr}"));
        let (number, unit) = said.split_at(said.find(|c: char| c.is_alphabetic()).unwrap());
        let scale = match unit {
            "ns" => 1e-6,
            "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            other => panic!("unit {other}"),
        };
        let said_ms = number.parse::<f64>().unwrap() * scale;
        let reported = applied["duration_ms"].as_f64().unwrap();
        // The report's whole milliseconds are cut, the text's rounded to
        // a tenth: 1.96 ms is `duration_ms` 1 and "2.0ms".
        assert!(
            (said_ms - reported).abs() < 1.05,
            "up said {said} for {label}, its report {reported} ms"
        );
    }
    std::fs::remove_file(path).unwrap();
}

/// `run_blocking` from inside a runtime, as in an async `main`: it runs the
/// command (on a thread of its own) instead of panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn run_blocking_works_inside_a_runtime() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }
    #[derive(clap::Subcommand)]
    enum Command {
        Migrate(stowage::cli::MigrateCommand),
    }
    static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("fixtures/operate");
    let (path, url) = fresh_sqlite("blocking");
    let Cli {
        command: Command::Migrate(migrate),
    } = <Cli as clap::Parser>::parse_from(["app", "migrate", "--database-url", &url, "up"]);
    assert_eq!(migrate.run_blocking(&MIGRATOR), 0);
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stowage_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 4);
    pool.close().await;
    // And on a current-thread runtime, where nothing else could run it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code =
        std::thread::spawn(move || runtime.block_on(async { migrate.run_blocking(&MIGRATOR) }))
            .join()
            .unwrap();
    assert_eq!(code, 0);
    std::fs::remove_file(path).unwrap();
}
