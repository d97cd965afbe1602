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
