//! `stowage::cli::main` for applications without clap: `app migrate <sub>`
//! and `app <sub>` both work, with the documented exit codes.

use std::process::Command;

const APP: &str = env!("CARGO_BIN_EXE_stowage-test-cli");

fn run(url: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(APP)
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
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
