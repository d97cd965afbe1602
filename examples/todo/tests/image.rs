//! The single-binary image itself, built by `scripts/image` (which
//! `scripts/test` runs) with podman from a static binary: it holds the
//! binary and its data folder and nothing else, and it runs as the Compose
//! file runs it: `migrate up` as a one-shot container against PostgreSQL
//! (directly and through PgBouncer) and MariaDB on the host (the URL from a
//! secret file), `migrate status --json`
//! and `migrate check` from the same image, then the app until stopped; and
//! on SQLite in a mounted volume, as the non-root user the image declares.
//!
//! Without the image (or where containers cannot run) each test fails and
//! says what is missing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use stowage_tests::{Backend, free_port, fresh};

/// The image's tag, from `scripts/image`.
fn image() -> String {
    if let Ok(error) = std::env::var("STOWAGE_TEST_IMAGE_ERROR") {
        panic!("the image could not be built or run here: {error}");
    }
    match std::env::var("STOWAGE_TEST_IMAGE") {
        Ok(tag) if !tag.trim().is_empty() => tag,
        _ => panic!(
            "STOWAGE_TEST_IMAGE is not set: run scripts/test, or scripts/image (it builds the \
             image with podman and prints the settings to run it with: CONTAINERS_CONF and \
             STOWAGE_TEST_PODMAN_ARGS) and set STOWAGE_TEST_IMAGE=localhost/stowage-todo:test"
        ),
    }
}

/// `podman` with this machine's settings (`STOWAGE_TEST_PODMAN_ARGS`, and
/// `CONTAINERS_CONF` from the environment).
fn podman(args: &[&str]) -> Output {
    let settings = std::env::var("STOWAGE_TEST_PODMAN_ARGS").unwrap_or_default();
    Command::new("podman")
        .args(settings.split_whitespace())
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run podman ({error}): apt-get install podman runc"))
}

/// `podman` that must succeed: its stdout.
fn podman_ok(args: &[&str]) -> String {
    let output = podman(args);
    assert!(
        output.status.success(),
        "podman {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_image_holds_the_static_binary_and_its_data_folder_only() {
    let image = image();
    let root = podman_ok(&["image", "mount", &image]);
    let root = Path::new(root.trim());
    let mut found: Vec<String> = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                folders.push(path);
            }
        }
    }
    found.sort();
    let binary = std::fs::read(root.join("todo")).unwrap();
    let owner = std::fs::metadata(root.join("data"))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    podman_ok(&["image", "unmount", &image]);
    // No migration file, no libc, no shell: the binary and an empty folder.
    assert_eq!(found, ["data", "todo"]);
    assert_eq!(owner, 65532, "the data folder belongs to the image's user");
    assert!(is_static(&binary), "the binary needs a dynamic loader");
    let config = podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(config.trim(), "65532:65532");
}

/// Whether an ELF binary has no interpreter (`PT_INTERP`): static.
fn is_static(elf: &[u8]) -> bool {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    assert_eq!(&elf[..4], b"\x7fELF");
    let (offset, size, count) = (
        usize::try_from(u64_at(0x20)).unwrap(),
        usize::from(u16_at(0x36)),
        usize::from(u16_at(0x38)),
    );
    (0..count).all(|i| u32::from_le_bytes(elf[offset + i * size..][..4].try_into().unwrap()) != 3)
}

/// A secret file holding `url`, readable by the image's user.
fn secret(label: &str, url: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stowage-image-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("database_url");
    std::fs::write(&file, format!("{url}\n")).unwrap();
    file
}

/// `podman run --rm` of the image on the host's network with `extra`
/// options and `args`.
fn run(extra: &[&str], args: &[&str]) -> Output {
    let image = image();
    let mut all = vec!["run", "--rm", "--network", "host"];
    all.extend_from_slice(extra);
    all.push(&image);
    all.extend_from_slice(args);
    podman(&all)
}

/// The migrate job, `status --json`, `check`, then the app serving until
/// stopped, each a container of the image with `extra` options.
fn job_then_app(extra: &[&str]) {
    let said = |output: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let up = run(extra, &["migrate", "up"]);
    assert!(up.status.success(), "{}", said(&up));
    assert!(said(&up).contains("applied 2 migrations"), "{}", said(&up));
    let status = run(extra, &["migrate", "status", "--json"]);
    assert!(status.status.success(), "{}", said(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (json["pending"].as_i64(), json["current"].as_i64()),
        (Some(0), json["head"].as_i64())
    );
    let check = run(extra, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", said(&check));

    let port = free_port();
    let listen = format!("LISTEN=127.0.0.1:{port}");
    let image = image();
    let mut detached = vec![
        "run",
        "--rm",
        "--detach",
        "--network",
        "host",
        "-e",
        &listen,
    ];
    detached.extend_from_slice(extra);
    detached.push(&image);
    let id = podman_ok(&detached).trim().to_owned();
    let started = Instant::now();
    let answered = loop {
        if let Some(answer) = get_todos(port) {
            break answer;
        }
        let running = podman_ok(&["inspect", "--format", "{{.State.Running}}", &id]);
        assert_eq!(running.trim(), "true", "{}", podman_ok(&["logs", &id]));
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the app never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let logs = podman_ok(&["logs", &id]);
    podman_ok(&["stop", "--time", "5", &id]);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.ends_with("[]"), "{answered}");
    // The job migrated; the app found nothing to do.
    assert!(!logs.contains("applied 2"), "{logs}");
}

/// `GET /todos`, once listening: the whole response.
fn get_todos(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /todos HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The job and the app on PostgreSQL directly, through PgBouncer in
/// transaction pooling, and on MariaDB.
#[tokio::test(flavor = "multi_thread")]
async fn the_image_migrates_then_serves_postgres_and_mariadb_with_the_url_from_a_secret() {
    for (backend, pooler) in [
        (Backend::Postgres, false),
        (Backend::Postgres, true),
        (Backend::MySql, false),
    ] {
        let db = fresh(backend, &format!("image {pooler}")).await;
        let url = match pooler {
            true => stowage_tests::pgbouncer_url(&db.name),
            false => db.url.clone(),
        };
        let file = secret(&format!("{backend:?}{pooler}"), &url);
        let mount = format!("{}:/run/secrets/database_url:ro", file.display());
        tokio::task::spawn_blocking(move || {
            job_then_app(&[
                "-v",
                &mount,
                "-e",
                "DATABASE_URL_FILE=/run/secrets/database_url",
            ]);
        })
        .await
        .unwrap();
        let history = db.pool().await.history().await;
        assert_eq!(history.len(), 2, "{backend:?} pooler: {pooler}");
    }
}

#[test]
fn the_image_keeps_sqlite_in_a_volume_as_its_own_user() {
    let volume = format!("stowage-image-sqlite-{}", std::process::id());
    podman_ok(&["volume", "create", &volume]);
    let mount = format!("{volume}:/data");
    job_then_app(&["-v", &mount]);
    let listing = run(&["-v", &mount], &["migrate", "status"]);
    let status = String::from_utf8_lossy(&listing.stdout).into_owned();
    podman_ok(&["volume", "rm", &volume]);
    assert!(status.contains("sqlite database at version"), "{status}");
}
