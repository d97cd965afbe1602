//! `todo migrate …`: every subcommand and exit code, run as a subprocess on a
//! SQLite file, and the redaction of passwords in its errors.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn todo(database: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_todo"))
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", database)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn database(label: &str) -> (String, PathBuf) {
    let path = std::env::temp_dir().join(format!("stowage-cli-{label}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (format!("sqlite://{}", path.display()), path)
}

fn sqlite(path: &Path, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
    });
}

const FIRST: &str = "20260101120000";
const SECOND: &str = "20260102090000";

#[test]
fn every_subcommand_and_exit_code() {
    let (url, path) = database("all");

    // Read-only commands do not create a missing database.
    for read_only in [&["status"][..], &["verify"], &["plan"], &["down", "--yes"]] {
        let run = todo(&url, read_only);
        assert_eq!(run.code, 1, "{read_only:?}: {}", run.stderr);
        assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
        assert!(!path.exists(), "{read_only:?} created {}", path.display());
    }
    std::fs::File::create(&path).unwrap();

    let run = todo(&url, &["status"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("2 pending"), "{}", run.stdout);

    let run = todo(&url, &["plan"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("-- up 20260101120000 create todos\nCREATE TABLE todos"),
        "{}",
        run.stdout
    );

    let run = todo(&url, &["up", "--to", FIRST]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("applied 1 migration"), "{}", run.stdout);
    let run = todo(&url, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["migrations"][0]["state"], "applied");
    assert_eq!(json["migrations"][1]["state"], "pending");

    let run = todo(&url, &["up"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = todo(&url, &["verify"]);
    assert_eq!(
        (run.code, run.stdout.trim()),
        (0, "ok: the history matches the binary")
    );

    // down without --yes shows the plan and changes nothing.
    let run = todo(&url, &["down"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout.contains("-- down 20260102090000"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(todo(&url, &["status"]).stdout.contains("0 pending"));
    let run = todo(&url, &["down", "--steps", "1", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("reverted 1 migration"),
        "{}",
        run.stdout
    );
    let run = todo(&url, &["down", "--base", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(todo(&url, &["status"]).stdout.contains("2 pending"));

    // stamp records without running: the table does not exist afterwards.
    let run = todo(&url, &["stamp", "head"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("stamped 2 migrations"),
        "{}",
        run.stdout
    );
    assert_eq!(todo(&url, &["stamp", "yesterday"]).code, 2);
    // Backwards, rows are removed: only with --yes.
    assert_eq!(todo(&url, &["stamp", "base"]).code, 2);
    assert_eq!(todo(&url, &["stamp", "base", "--yes"]).code, 0);
    assert_eq!(todo(&url, &["up"]).code, 0);

    // A changed checksum: verify exits 3, up refuses with 1, repair fixes it.
    sqlite(
        &path,
        // As a database migrated by a binary whose first file differed: its
        // checksum, and so every chain value, differ from this binary's.
        &format!(
            "UPDATE stowage_migrations SET checksum = X'00' WHERE version = {FIRST}; \
             UPDATE stowage_migrations SET chain = X'00'"
        ),
    );
    let run = todo(&url, &["verify"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout.contains("problem: migration 20260101120000"),
        "{}",
        run.stdout
    );
    let run = todo(&url, &["up"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("repair"), "{}", run.stderr);
    let run = todo(&url, &["repair", "--accept-checksums"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(todo(&url, &["verify"]).code, 0);

    // A failed row: up refuses, repair --clear-failed clears it.
    sqlite(
        &path,
        &format!("UPDATE stowage_migrations SET state = 'failed' WHERE version = {SECOND}"),
    );
    let run = todo(&url, &["up"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(&format!("repair --clear-failed {SECOND}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        todo(&url, &["repair", "--clear-failed", "42"]).code,
        1,
        "no such failed row"
    );
    assert_eq!(todo(&url, &["repair", "--clear-failed", SECOND]).code, 0);

    // Usage errors.
    assert_eq!(todo(&url, &["explode"]).code, 2);
    assert_eq!(todo(&url, &["repair"]).code, 2);
    assert_eq!(todo(&url, &["down", "--steps", "1", "--base"]).code, 2);
    let help = todo(&url, &["--help"]);
    assert_eq!(help.code, 0);
    for sub in ["up", "down", "status", "stamp", "verify", "plan", "repair"] {
        assert!(help.stdout.contains(sub), "{}", help.stdout);
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn an_unreachable_database_fails_without_showing_the_password() {
    let port = stowage_tests::free_port();
    let url = format!("postgres://app:pa55word-secret@127.0.0.1:{port}/app");
    let run = todo(&url, &["status", "--connect-timeout", "1"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("app:***@127.0.0.1"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("pa55word-secret") && !run.stdout.contains("pa55word-secret"),
        "{}",
        run.stderr
    );
}

/// Without `DATABASE_URL`, the binary reads the URL from the file
/// `DATABASE_URL_FILE` names (a Compose or Kubernetes secret): it migrates
/// the database that file points to; a missing file is named, and its
/// contents never shown.
#[test]
fn the_url_comes_from_a_secret_file() {
    let (url, path) = database("secret");
    let secret = std::env::temp_dir().join(format!("stowage-secret-{}", std::process::id()));
    std::fs::write(&secret, format!("{url}\n")).unwrap();
    let with_file = |file: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_todo"))
            .arg("migrate")
            .args(args)
            .env_remove("DATABASE_URL")
            .env("DATABASE_URL_FILE", file)
            .output()
            .unwrap()
    };
    let up = with_file(&secret, &["up"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(path.exists(), "the database the secret names was created");
    let status = with_file(&secret, &["status"]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains(FIRST) && stdout.contains(SECOND),
        "{stdout}"
    );

    let missing = secret.with_extension("missing");
    let failed = with_file(&missing, &["status"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("DATABASE_URL_FILE=") && stderr.contains("missing"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&secret);
    let _ = std::fs::remove_file(&path);
}
