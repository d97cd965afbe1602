//! The built `todo` binary, copied alone into an empty folder (no
//! `migrations/` anywhere near it): it migrates a fresh database, serves
//! requests, and `todo migrate status --json` reports every migration applied.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stowage_tests::{Backend, free_port, fresh};

/// The binary, copied into a new empty folder.
fn lone_binary(label: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("stowage-todo-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("todo");
    std::fs::copy(env!("CARGO_BIN_EXE_todo"), &binary).unwrap();
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "the folder holds the binary only"
    );
    (dir, binary)
}

/// One HTTP/1.1 request; the status code and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn wait_until_listening(server: &mut Child, port: u16) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.try_wait().unwrap() {
            let mut stderr = String::new();
            server
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the server exited ({status}): {stderr}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve_and_check(dir: &Path, binary: &Path, url: Option<&str>) {
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir);
    command
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(url) = url {
        command.env("DATABASE_URL", url);
    }
    let mut server = command.spawn().unwrap();
    wait_until_listening(&mut server, port);
    let (status, body) = http(port, "POST", "/todos", r#"{"title":"ship it"}"#);
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["title"], "ship it");
    let (status, body) = http(port, "GET", "/todos", "");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["title"], "ship it");
    assert_eq!(list[0]["done"], false);
    server.kill().unwrap();
    server.wait().unwrap();

    let mut status = Command::new(binary);
    status
        .args(["migrate", "status", "--json"])
        .current_dir(dir)
        .env_remove("DATABASE_URL");
    if let Some(url) = url {
        status.env("DATABASE_URL", url);
    }
    let output = status.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let migrations = json["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 2, "{json}");
    assert!(migrations.iter().all(|m| m["state"] == "applied"), "{json}");
}

#[test]
fn the_lone_binary_on_its_default_sqlite_file() {
    let (dir, binary) = lone_binary("sqlite");
    serve_and_check(&dir, &binary, None);
    assert!(
        dir.join("todo.db").exists(),
        "the default database is a file in the working folder"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_lone_binary_on_postgres_and_mariadb() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let db = fresh(backend, "todo").await;
        let (dir, binary) = lone_binary(&format!("{backend:?}"));
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || {
            serve_and_check(&dir, &binary, Some(&url));
            std::fs::remove_dir_all(dir).unwrap();
        })
        .await
        .unwrap();
    }
}
