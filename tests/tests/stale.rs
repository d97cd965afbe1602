//! A migration file added after a build must not leave a stale binary: with
//! the README's `build.rs` (`stowage_build::rerun_if_changed`) and its
//! `[build-dependencies]`, cargo rebuilds and embeds it; without it, a debug
//! build warns and names the file. The scratch crate names stowage as
//! `migrations` (`package = "stowage-migrate"`), as an application that
//! renames the dependency does.
//!
//! Each case builds a scratch crate with the real cargo, in a target folder
//! of its own under the workspace's `target/` (kept between runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stowage_tests::{readme_block, workspace};

/// The README's `[build-dependencies]` lines, each `name = "version"` of a
/// workspace crate given its path too (the crate is not on the registry
/// here): what a user pastes, built from this checkout.
fn readme_build_dependencies() -> String {
    let manifest = readme_block("# Cargo.toml");
    let lines: Vec<&str> = manifest
        .lines()
        .skip_while(|line| *line != "[build-dependencies]")
        .skip(1)
        .take_while(|line| !line.is_empty() && !line.starts_with('['))
        .collect();
    assert!(
        !lines.is_empty(),
        "no [build-dependencies] in the README:\n{manifest}"
    );
    let mut out = String::from("[build-dependencies]\n");
    for line in lines {
        let (name, version) = line.split_once(" = ").unwrap();
        let version = version.trim_matches('"');
        let folder = name.strip_prefix("stowage-").unwrap_or(name);
        let path = workspace().join(folder);
        let crate_manifest = std::fs::read_to_string(path.join("Cargo.toml"))
            .unwrap_or_else(|_| panic!("the README's {name} is not a crate of this workspace"));
        assert!(
            crate_manifest.contains(&format!("name = \"{name}\"")),
            "{name} is not the package in {}",
            path.display()
        );
        out.push_str(&format!(
            "{name} = {{ version = \"{version}\", path = {:?} }}\n",
            path.display().to_string()
        ));
    }
    out
}

/// A crate outside the workspace that depends on stowage under another name
/// (`package = "stowage-migrate"`), as an application may; with the
/// README's `build.rs` and `[build-dependencies]` when `with_build_rs`.
fn scratch_crate(name: &str, with_build_rs: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stowage-stale-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    let runtime = workspace().join("runtime");
    let build_deps = if with_build_rs {
        readme_build_dependencies()
    } else {
        String::new()
    };
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nmigrations = {{ package = \"stowage-migrate\", path = {:?} }}\n{build_deps}\n[workspace]\n",
            runtime.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    if with_build_rs {
        std::fs::write(
            dir.join("build.rs"),
            readme_block(
                "// build.rs: rebuild when a migration file is added, not only when one is edited",
            ),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("src/main.rs"),
        "static MIGRATOR: migrations::Migrator = migrations::embed_migrations!();\n\
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
    // What the build script is compiled with: the README's build
    // dependency, and nothing of sqlx.
    let tree = cargo(&dir, &["tree", "--edges", "build", "--prefix", "none"]);
    let tree = String::from_utf8_lossy(&tree.stdout);
    let build_deps: Vec<&str> = tree.lines().skip(1).collect();
    assert!(
        build_deps.iter().any(|l| l.starts_with("stowage-build ")),
        "{tree}"
    );
    assert!(
        !tree.contains("sqlx"),
        "the build script compiles sqlx:\n{tree}"
    );
    std::fs::write(
        dir.join("migrations/2_add_email.sql"),
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    )
    .unwrap();
    let (stdout, stderr) = run(&dir);
    assert_eq!(stdout, "1,2", "the rebuilt binary embeds the new file");
    assert!(!stderr.contains("stale"), "{stderr}");
    // The binary run without a build after a new file: stale, and the way
    // out is a build, not the build.rs it already has.
    std::fs::write(
        dir.join("migrations/3_add_name.sql"),
        "ALTER TABLE users ADD COLUMN name TEXT;\n",
    )
    .unwrap();
    let binary = workspace().join("target/scratch/debug/stale_with_build_rs");
    let output = Command::new(binary).current_dir(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1,2");
    assert!(
        stderr.contains("this binary is stale") && stderr.contains("3_add_name.sql"),
        "{stderr}"
    );
    assert!(
        stderr.contains("build.rs reruns for the folder") && !stderr.contains("add `stowage_build"),
        "{stderr}"
    );
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
        stderr.contains("stowage_build::rerun_if_changed"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `#[migrations::test]` in a crate that names stowage `migrations`
/// (`package = "stowage-migrate"`): the attribute finds that name in the
/// crate's manifest, and the test runs on its own database (SQLite files).
/// The README's test example runs there too, as written but for the
/// crate's name.
#[test]
fn the_test_attribute_works_under_a_renamed_dependency() {
    let dir = std::env::temp_dir().join(format!("stowage-renamed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"renamed\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nmigrations = {{ package = \"stowage-migrate\", path = {:?}, features = [\"testing\"] }}\n\
             sqlx = {{ version = \"0.9\", default-features = false, features = [\"any\", \"runtime-tokio\"] }}\n\
             [workspace]\n",
            workspace().join("runtime").display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        dir.join("migrations/1_create_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("migrations/2_seed.sql"),
        "CREATE TABLE seeds (id INTEGER);\nINSERT INTO seeds VALUES (7);\n",
    )
    .unwrap();
    let example = readme_block(
        "// tests/users.rs: embeds ./migrations; or migrator = \"crate::MIGRATOR\", migrations = \"dir\"",
    );
    assert!(example.contains("\n#[stowage::test]\n"), "{example}");
    std::fs::write(
        dir.join("tests/users.rs"),
        example.replace("#[stowage::test]", "#[migrations::test]"),
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/renamed.rs"),
        "#[migrations::test]\n\
         async fn sees_the_migrated_row(pool: sqlx::AnyPool) {\n    \
             let id: i32 = sqlx::query_scalar(\"SELECT id FROM seeds\").fetch_one(&pool).await.unwrap();\n    \
             assert_eq!(id, 7);\n\
         }\n",
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["test", "--quiet", "--offline", "--tests"])
        .env("CARGO_TARGET_DIR", workspace().join("target/scratch"))
        .env_remove("RUSTFLAGS")
        .env_remove("DATABASE_URL")
        .env_remove("STOWAGE_TEST_DATABASE_URL")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.matches("1 passed").count(),
        2,
        "renamed.rs and the README's users.rs: {stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
