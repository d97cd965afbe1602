//! A migration file added after a build must not leave a stale binary: with
//! `stowage::build::rerun_if_changed` in `build.rs` cargo rebuilds and embeds
//! it; without it, a debug build warns and names the file.
//!
//! Each case builds a scratch crate with the real cargo, in a target folder
//! of its own under the workspace's `target/` (kept between runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn scratch_crate(name: &str, with_build_rs: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stowage-stale-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    let runtime = workspace().join("runtime");
    let build_deps = if with_build_rs {
        format!(
            "[build-dependencies]\nstowage = {{ path = {:?} }}\n",
            runtime.display().to_string()
        )
    } else {
        String::new()
    };
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nstowage = {{ path = {:?} }}\n{build_deps}\n[workspace]\n",
            runtime.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    if with_build_rs {
        std::fs::write(
            dir.join("build.rs"),
            "fn main() { stowage::build::rerun_if_changed(\"migrations\"); }\n",
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("src/main.rs"),
        "static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();\n\
         fn main() {\n    \
             let versions: Vec<String> = MIGRATOR.iter().map(|m| m.version().to_string()).collect();\n    \
             println!(\"{}\", versions.join(\",\"));\n\
         }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("migrations/1_create_users.sql"),
        "CREATE TABLE users (id INTEGER);\n",
    )
    .unwrap();
    dir
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(args)
        .args(["--quiet", "--offline"])
        .env("CARGO_TARGET_DIR", workspace().join("target/scratch"))
        .env_remove("RUSTFLAGS")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn run(dir: &Path) -> (String, String) {
    let output = cargo(dir, &["run"]);
    (
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn build_rs_helper_embeds_a_new_file() {
    let dir = scratch_crate("stale_with_build_rs", true);
    assert_eq!(run(&dir).0, "1");
    std::fs::write(
        dir.join("migrations/2_add_email.sql"),
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    )
    .unwrap();
    let (stdout, stderr) = run(&dir);
    assert_eq!(stdout, "1,2", "the rebuilt binary embeds the new file");
    assert!(!stderr.contains("stale"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_build_rs_a_debug_build_warns() {
    let dir = scratch_crate("stale_without_build_rs", false);
    let (stdout, stderr) = run(&dir);
    assert_eq!(stdout, "1");
    assert!(!stderr.contains("stale"), "{stderr}");
    std::fs::write(
        dir.join("migrations/2_add_email.sql"),
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    )
    .unwrap();
    let (stdout, stderr) = run(&dir);
    assert_eq!(stdout, "1", "cargo cannot know about the new file");
    assert!(stderr.contains("this binary is stale"), "{stderr}");
    assert!(stderr.contains("2_add_email.sql"), "{stderr}");
    assert!(
        stderr.contains("stowage::build::rerun_if_changed"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
