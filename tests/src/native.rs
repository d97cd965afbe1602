//! Each database's own client and dump tool, as oracles: `psql`/`pg_dump`,
//! `mariadb`/`mariadb-dump`, `sqlite3`.

use crate::Backend;
use std::io::Write;
use std::process::{Command, Stdio};

/// A MySQL URL's parts: host, port, user, password, database.
fn mysql_parts(url: &str) -> (String, String, String, String, String) {
    let rest = url.strip_prefix("mysql://").expect("a mysql:// URL");
    let (authority, database) = rest.split_once('/').expect("a database in the URL");
    let (user, host) = authority.rsplit_once('@').unwrap_or(("root", authority));
    let (user, password) = user.split_once(':').unwrap_or((user, ""));
    let (host, port) = host.split_once(':').unwrap_or((host, "3306"));
    let database = database.split('?').next().unwrap_or_default();
    [host, port, user, password, database]
        .map(str::to_owned)
        .into()
}

/// A SQLite URL's file.
fn sqlite_file(url: &str) -> &str {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    path.split('?').next().unwrap_or(path)
}

/// How to run `tool` of `backend` on the database at `url`.
fn command(backend: Backend, tool: &str, url: &str) -> Command {
    let mut command = Command::new(tool);
    match backend {
        Backend::Postgres => {
            command.args(["-d", url]);
        }
        Backend::MySql => {
            let (host, port, user, password, database) = mysql_parts(url);
            command
                .args([
                    format!("--host={host}"),
                    format!("--port={port}"),
                    format!("--user={user}"),
                ])
                .env("MYSQL_PWD", password)
                .arg(database);
        }
        Backend::Sqlite => {
            command.arg(sqlite_file(url));
        }
    }
    command
}

fn missing(tool: &str, error: std::io::Error) -> ! {
    panic!(
        "cannot run `{tool}` ({error}), the database's own client this test holds stowage \
         against: install it (apt-get install postgresql-client mariadb-client sqlite3; \
         scripts/test installs them with the servers)"
    )
}

/// Run `script` through the database's own client (`psql` stopping at the
/// first error, `mariadb`, `sqlite3` with `.bail on`); panics with what it
/// said when it fails.
pub fn client(backend: Backend, url: &str, script: &str) {
    if let Err(said) = try_client(backend, url, script) {
        panic!("{said}\n{script}");
    }
}

/// [`client`], with what the client said as the error when it fails.
pub fn try_client(backend: Backend, url: &str, script: &str) -> Result<(), String> {
    let (tool, mut command) = match backend {
        Backend::Postgres => {
            let mut c = command(backend, "psql", url);
            c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
            ("psql", c)
        }
        Backend::MySql => {
            // The session sqlx opens (which routines and events remember).
            let mut c = command(backend, "mariadb", url);
            c.args([
                "--batch",
                "--default-character-set=utf8mb4",
                "--init-command=SET time_zone = '+00:00'",
            ]);
            ("mariadb", c)
        }
        Backend::Sqlite => {
            let mut c = command(backend, "sqlite3", url);
            c.args(["-bail"]);
            ("sqlite3", c)
        }
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| missing(tool, e));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{tool} refused the script: {}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        )),
    }
}

/// The schema as the database's own dump tool prints it (`pg_dump
/// --schema-only`, `mariadb-dump --no-data --routines --triggers --events`,
/// sqlite3's `.schema`), without the tables named `leave_out`, comments and
/// what differs between two databases of one schema (`AUTO_INCREMENT=`,
/// `DEFINER=`, the order of a MySQL table's keys of one kind); `None` for a PostgreSQL newer than the installed `pg_dump`,
/// which refuses to read it.
pub fn dump(backend: Backend, url: &str, leave_out: &[&str]) -> Option<String> {
    let (tool, mut command) = match backend {
        Backend::Postgres => {
            let mut c = command(backend, "pg_dump", url);
            c.args(["--schema-only", "--no-owner", "--no-privileges"]);
            for table in leave_out {
                c.args(["-T", table]);
            }
            ("pg_dump", c)
        }
        Backend::MySql => {
            let mut c = command(backend, "mariadb-dump", url);
            c.args([
                "--no-data",
                "--routines",
                "--triggers",
                "--events",
                "--skip-dump-date",
                "--skip-comments",
            ]);
            let database = mysql_parts(url).4;
            for table in leave_out {
                c.arg(format!("--ignore-table={database}.{table}"));
            }
            ("mariadb-dump", c)
        }
        Backend::Sqlite => {
            let mut c = command(backend, "sqlite3", url);
            c.arg(".schema");
            ("sqlite3", c)
        }
    };
    let output = command.output().unwrap_or_else(|e| missing(tool, e));
    let stderr = String::from_utf8_lossy(&output.stderr);
    if backend == Backend::Postgres && stderr.contains("server version mismatch") {
        return None;
    }
    assert!(output.status.success(), "{tool} failed: {stderr}");
    let text = String::from_utf8(output.stdout).unwrap();
    let mut statements: Vec<String> = Vec::new();
    for line in text.lines() {
        // pg_dump's comments and its per-run `\restrict` key.
        if line.starts_with("--")
            || line.starts_with("\\restrict")
            || line.starts_with("\\unrestrict")
        {
            continue;
        }
        statements.push(without_counters(line));
    }
    let mut text = statements.join("\n");
    if backend == Backend::MySql {
        text = trigger_headers_spaced_alike(&text);
        text = keys_in_one_order(&text);
    }
    let mut kept: Vec<&str> = text
        .split(";\n")
        .map(|statement| statement.strip_suffix(';').unwrap_or(statement))
        .filter(|statement| {
            // sqlite3 prints every table: leave out those named, and their
            // indexes and triggers, by the statement's first line.
            let first = format!(
                " {} ",
                statement
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .replace(['(', '"'], " ")
            );
            backend != Backend::Sqlite
                || !leave_out
                    .iter()
                    .any(|table| first.contains(&format!(" {table} ")))
        })
        .collect();
    if backend == Backend::Sqlite {
        // In the order the objects were created: not part of the schema.
        kept.sort_unstable();
    }
    Some(kept.join(";\n"))
}

/// mariadb-dump's triggers with each header's quotes and spacing made
/// alike: stowage writes a MySQL trigger from `information_schema`'s parts
/// (`SHOW CREATE TRIGGER`, which keeps the statement as typed, gives a date
/// `AnyPool` cannot read), so its header is `CREATE TRIGGER `t` BEFORE
/// INSERT ON `x` FOR EACH ROW ` where the user's may be spaced otherwise.
fn trigger_headers_spaced_alike(text: &str) -> String {
    const START: &str = "/*!50003 TRIGGER ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        out.push_str(&rest[..at + START.len()]);
        rest = &rest[at + START.len()..];
        let end = rest
            .find("FOR EACH ROW")
            .map_or(0, |i| i + "FOR EACH ROW".len());
        out.push_str(&rest[..end].replace('`', ""));
        rest = rest[end..].trim_start();
        out.push(' ');
    }
    out.push_str(rest);
    out
}

/// Each run of a MySQL table's key lines sorted, kind by kind: the server
/// lists keys in the order they were made (unique keys on `NOT NULL`
/// columns first), which two databases of one schema need not share.
fn keys_in_one_order(text: &str) -> String {
    let kind = |line: &str| {
        [
            "  UNIQUE KEY ",
            "  KEY ",
            "  FULLTEXT KEY ",
            "  SPATIAL KEY ",
        ]
        .iter()
        .position(|start| line.starts_with(start))
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..].iter().take_while(|l| kind(l).is_some()).count();
        if run == 0 {
            out.push(lines[i].to_owned());
            i += 1;
            continue;
        }
        let comma = lines[i + run - 1].ends_with(',');
        let mut keys: Vec<&str> = lines[i..i + run]
            .iter()
            .map(|l| l.trim_end_matches(','))
            .collect();
        keys.sort_by_key(|l| (kind(l), l.to_owned()));
        for (n, key) in keys.iter().enumerate() {
            let end = if n + 1 < run || comma { "," } else { "" };
            out.push(format!("{key}{end}"));
        }
        i += run;
    }
    out.join("\n")
}

/// `line` without `AUTO_INCREMENT=N` and `DEFINER=user@host`.
fn without_counters(line: &str) -> String {
    let mut out = line.to_owned();
    for clause in ["AUTO_INCREMENT=", "DEFINER="] {
        while let Some(start) = out.find(clause) {
            let rest = &out[start + clause.len()..];
            let mut quoted = false;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    if c == '`' {
                        quoted = !quoted;
                    }
                    !quoted && (c == ' ' || c == '*')
                })
                .map_or(rest.len(), |(i, _)| i);
            let from = if out[..start].ends_with(' ') {
                start - 1
            } else {
                start
            };
            out = format!("{}{}", &out[..from], &rest[end..]);
        }
    }
    out
}
