//! `migrate new` in a scratch crate of its own, as a user's project has it:
//! one binary per layout (sqlx's simple and reversible files, refinery's
//! and Flyway's `V` files, diesel's folders, one folder per dialect, each in
//! `layouts/<layout>`; the README's `app` in `migrations`), built
//! with only stowage's `sqlite` and `cli` features. Each writes its next
//! migration, named and numbered as its neighbours; rebuilt, each binary
//! embeds what `new` wrote. The same build shows that a URL of a database
//! whose feature was left out names that feature. A second scratch crate,
//! with the `mysql` feature instead, runs `new --from-database` on MariaDB.

use std::path::{Path, PathBuf};
use std::process::Command;
use stowage_tests::readme_block;

const LAYOUTS: [(&str, &str); 7] = [
    // The README's terminal session, on a project of its own.
    ("app", "simple"),
    ("simple", "simple"),
    ("reversible", "reversible"),
    ("refinery", "refinery"),
    ("diesel", "diesel"),
    ("multi", "multi"),
    // No migrations yet, for a database made by hand.
    ("adopting", "adopting"),
];

/// The scratch crate, written afresh: its folders copied from the
/// fixtures, no `build.rs`.
fn scratch() -> PathBuf {
    let dir = scratch_dir();
    let _ = std::fs::remove_dir_all(dir.join("migrations"));
    let _ = std::fs::remove_dir_all(dir.join("layouts"));
    let _ = std::fs::remove_file(dir.join("build.rs"));
    std::fs::create_dir_all(dir.join("src/bin")).unwrap();
    // The README's dependencies for `app migrate …`, stowage from this
    // checkout.
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
    let dependencies = readme_block("# Cargo.toml, for `app migrate …`").replace(
        "stowage-migrate = { version = \"0.1\",",
        &format!(
            "stowage-migrate = {{ version = \"0.1\", path = {:?},",
            runtime.canonicalize().unwrap()
        ),
    );
    assert!(dependencies.contains("path = "), "{dependencies}");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch-new\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[workspace]\n\n{dependencies}\n"
        ),
    )
    .unwrap();
    // The workspace's versions, so that the build needs nothing new.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    for (bin, fixture) in LAYOUTS {
        let folder = folder(bin);
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(fixture),
            &dir.join(&folder),
        );
        // `app` is the README's nesting example as written; the others hand
        // their command line to `stowage::cli::main`.
        let main = match bin {
            "app" => readme_block(
                "// src/main.rs: `app` serves, `app migrate …` inspects and changes the database",
            ),
            _ => format!(
                "static MIGRATOR: stowage::Migrator = \
                 stowage::embed_migrations!(\"{folder}\");\n\
                 fn main() {{ stowage::cli::main(&MIGRATOR) }}\n"
            ),
        };
        std::fs::write(dir.join(format!("src/bin/{bin}.rs")), main).unwrap();
    }
    dir
}

/// The scratch crate's folder.
fn scratch_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("scratch-new")
}

/// Where a binary's migrations are, relative to the scratch crate.
fn folder(bin: &str) -> String {
    match bin {
        "app" => "migrations".to_owned(),
        _ => format!("layouts/{bin}"),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "README.md" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Build the scratch crate in the workspace's target folder (sharing what
/// it can), offline: every crate it needs is the workspace's.
fn build(dir: &Path) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["build", "--offline", "--quiet", "--bins", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target.join("scratch"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Run a scratch binary in the scratch crate's folder, as `cargo run` in a
/// project does: exit code, stdout, stderr.
fn run(bin: &str, args: &[&str], url: &str) -> (i32, String, String) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let output = Command::new(target.join("scratch/debug").join(bin))
        .args(args)
        .current_dir(scratch_dir())
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The file names `new` printed (relative to the folder it ran in),
/// relative to the layout's folder.
fn written(bin: &str, stdout: &str) -> Vec<String> {
    let folder = folder(bin);
    stdout
        .lines()
        .map(|line| {
            Path::new(line)
                .strip_prefix(&folder)
                .unwrap_or_else(|_| panic!("{line} is not in {}", folder))
                .display()
                .to_string()
        })
        .collect()
}

/// `yyyymmddhhmmss`-shaped: 14 digits starting with 20.
fn is_stamp(text: &str) -> bool {
    text.len() == 14 && text.starts_with("20") && text.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn new_writes_the_next_migration_in_each_layout() {
    let dir = scratch();
    build(&dir);
    let new = |bin: &str, args: &[&str]| {
        let mut all = vec!["new"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = run(bin, &all, "");
        assert_eq!(code, 0, "{bin}: {stderr}");
        (written(bin, &stdout), stderr)
    };

    // sqlx's simple files, numbered: the next number, then the one after
    // (read from the folder, not from the binary built before it).
    let (files, stderr) = new("simple", &["Add things"]);
    assert_eq!(files, ["3_add_things.sql"]);
    assert!(stderr.contains("has no build.rs"), "{stderr}");
    let (files, _) = new("simple", &["more", "--reversible"]);
    assert_eq!(files, ["4_more.up.sql", "4_more.down.sql"]);
    // A name already in the folder is refused, and nothing is written.
    let (code, stdout, stderr) = run("simple", &["new", "add", "things"], "");
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(
        stderr.contains("layouts/simple/3_add_things.sql already has this name"),
        "{stderr}"
    );
    let listed = std::fs::read_dir(dir.join("layouts/simple"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count();
    assert_eq!(listed, 5, "the fixture's two, then 3 and 4's three files");

    // Timestamped up/down pairs: a timestamp, reversible like them.
    let (files, _) = new("reversible", &["add things"]);
    let stamp = files[0].strip_suffix("_add_things.up.sql").unwrap();
    assert!(is_stamp(stamp), "{files:?}");
    assert_eq!(files[1], format!("{stamp}_add_things.down.sql"));

    // refinery's V files: after V10; Flyway's U file when reversible.
    let (files, _) = new("refinery", &["add things"]);
    assert_eq!(files, ["V11__add_things.sql"]);
    let (files, _) = new("refinery", &["undo me", "--reversible"]);
    assert_eq!(files, ["V12__undo_me.sql", "U12__undo_me.sql"]);

    // diesel's folders, stamped as the newest one is.
    let (files, _) = new("diesel", &["add things"]);
    let folder = files[0].strip_suffix("/up.sql").unwrap();
    let (stamp, name) = folder.split_once('_').unwrap();
    let shape: Vec<usize> = stamp.split('-').map(str::len).collect();
    assert_eq!(
        (shape.as_slice(), name),
        ([4, 2, 2, 6, 4].as_slice(), "add_things")
    );
    assert_eq!(files[1], format!("{folder}/down.sql"));

    // One file per dialect folder, with one version for both.
    let (files, _) = new("multi", &["add things"]);
    assert_eq!(
        files,
        ["postgres/3_add_things.sql", "sqlite/3_add_things.sql"]
    );

    // From a database made by hand: its schema as the first migration,
    // and in a multi-dialect folder only in the database's own dialect's.
    let hand = dir.join("hand.db");
    let _ = std::fs::remove_file(&hand);
    let hand_url = format!("sqlite://{}", hand.display());
    let hand_schema = "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
                       CREATE INDEX things_name ON things (name);\n\
                       CREATE VIEW named AS SELECT name FROM things;";
    stowage_tests::native::client(stowage_tests::Backend::Sqlite, &hand_url, hand_schema);
    let (code, stdout, stderr) = run(
        "adopting",
        &["new", "from hand", "--from-database"],
        &hand_url,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("`migrate baseline`"), "{stderr}");
    let adopting = written("adopting", &stdout);
    assert_eq!(adopting.len(), 1, "{adopting:?}");
    let sql = std::fs::read_to_string(dir.join("layouts/adopting").join(&adopting[0])).unwrap();
    for line in hand_schema.lines() {
        let statement = line.trim_end_matches(';');
        assert!(sql.contains(statement), "{statement} is not in:\n{sql}");
    }
    let (code, stdout, stderr) = run("multi", &["new", "hand", "--from-database"], &hand_url);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(written("multi", &stdout), ["sqlite/4_hand.sql"]);
    std::fs::remove_file(dir.join("layouts/multi/sqlite/4_hand.sql")).unwrap();
    // An empty database has nothing to write; nothing is.
    let empty_url = format!("sqlite://{}?mode=rwc", dir.join("empty.db").display());
    let (code, stdout, stderr) = run(
        "adopting",
        &["new", "nothing", "--from-database"],
        &empty_url,
    );
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.contains("no schema to write"), "{stderr}");

    // With a build.rs that reruns for the folder, nothing to say.
    std::fs::write(
        dir.join("build.rs"),
        "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
    )
    .unwrap();
    let (_, stderr) = new("simple", &["quiet one"]);
    assert!(!stderr.contains("note:"), "{stderr}");

    // Rebuilt, each binary embeds what `new` wrote: the names parse as
    // their layout's, in the order written.
    build(&dir);
    for (bin, version) in [
        ("simple", "5".to_owned()),
        ("refinery", "12".to_owned()),
        ("multi", "3".to_owned()),
        ("reversible", stamp_of(&dir, "reversible")),
    ] {
        let (code, stdout, stderr) = run(bin, &["show", &version], "");
        assert_eq!(code, 0, "{bin} {version}: {stderr}");
        assert!(
            stdout.contains("Write the migration's SQL here"),
            "{bin}: {stdout}"
        );
    }
    let (code, stdout, _) = run("refinery", &["show", "12"], "");
    assert_eq!(code, 0);
    assert!(stdout.contains("-- 12 undo me: down"), "{stdout}");

    // Rebuilt with it, the migration written from the database is the
    // database's schema: `baseline` records it, no drift; written from
    // again, there is nothing to write.
    let (code, stdout, stderr) = run("adopting", &["baseline"], &hand_url);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = run("adopting", &["drift"], &hand_url);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("no drift"), "{stdout}");
    let (code, stdout, stderr) = run("adopting", &["new", "again", "--from-database"], &hand_url);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("nothing to do"), "{stdout}");
    // The migration's name is not taken for --from-database's URL, and a
    // rename hint needs something to generate from.
    let (code, _, stderr) = run("adopting", &["new", "--from-database", "x", "y"], &hand_url);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not a database URL"), "{stderr}");
    let (code, _, stderr) = run("adopting", &["new", "x", "--rename", "a=b"], &hand_url);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--rename goes with"), "{stderr}");

    // The schema file edited: `new --from-schema` writes the migration to
    // it and its down, in the folder's layout; rebuilt, `up` applies it,
    // the rows kept, and the database has the schema of the file.
    stowage_tests::native::client(
        stowage_tests::Backend::Sqlite,
        &hand_url,
        "INSERT INTO things (id, name) VALUES (1, 'one'), (2, 'two');",
    );
    let desired = "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL, color TEXT);\n\
                   CREATE INDEX things_color ON things (color);\n\
                   CREATE VIEW named AS SELECT name FROM things;\n";
    let file = dir.join("schema.sql");
    std::fs::write(&file, desired).unwrap();
    let file_arg = file.display().to_string();
    let (code, stdout, stderr) = run(
        "adopting",
        &["new", "add color", "--from-schema", &file_arg],
        &hand_url,
    );
    assert_eq!(code, 0, "{stderr}");
    let generated = written("adopting", &stdout);
    assert_eq!(generated.len(), 2, "an up and a down: {generated:?}");
    assert!(stderr.contains("review: rebuilds table things"), "{stderr}");
    let up = std::fs::read_to_string(dir.join("layouts/adopting").join(&generated[0])).unwrap();
    assert!(up.contains("color TEXT"), "{up}");
    assert!(up.contains("DROP INDEX \"things_name\""), "{up}");
    // The folder is watched, as `stowage::build` does, so the build sees
    // the new files.
    std::fs::write(
        dir.join("build.rs"),
        "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); \
         println!(\"cargo:rerun-if-changed=layouts/adopting\"); }\n",
    )
    .unwrap();
    build(&dir);
    let (code, stdout, stderr) = run("adopting", &["up"], &hand_url);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = run("adopting", &["dump"], &hand_url);
    assert_eq!(code, 0);
    for line in desired.lines() {
        assert!(
            stdout.contains(line.trim_end_matches(';')),
            "{line} is not in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("things_name"), "{stdout}");
    assert_eq!(
        count(&hand_url, "SELECT COUNT(*) FROM things"),
        2,
        "the rows are kept"
    );
    // Now the migrations build the file's schema: nothing to write.
    let (code, stdout, stderr) = run(
        "adopting",
        &["new", "again", "--from-schema", &file_arg],
        &hand_url,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("nothing to do"), "{stdout}");

    // That database changed by hand, as a development one is: `new
    // --from-database URL` writes the change (the command's own database
    // elsewhere), the rename as hinted; rebuilt, a database migrated from
    // nothing has the changed one's schema (an index's text to the space
    // SQLite keeps before its `;`), and the rows are renamed, not dropped.
    stowage_tests::native::client(
        stowage_tests::Backend::Sqlite,
        &hand_url,
        "UPDATE things SET color = 'red';
         ALTER TABLE things RENAME COLUMN color TO colour;
         ALTER TABLE things ADD COLUMN size INTEGER;
         CREATE INDEX things_size ON things (size) ;",
    );
    let _ = std::fs::remove_file(dir.join("elsewhere.db"));
    let elsewhere = format!("sqlite://{}?mode=rwc", dir.join("elsewhere.db").display());
    let (code, stdout, stderr) = run(
        "adopting",
        &[
            "new",
            "colour and size",
            "--from-database",
            &hand_url,
            "--rename",
            "things.color=colour",
        ],
        &elsewhere,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("review: renames column things.color to colour"),
        "{stderr}"
    );
    let generated = written("adopting", &stdout);
    assert_eq!(generated.len(), 2, "an up and a down: {generated:?}");
    let up = std::fs::read_to_string(dir.join("layouts/adopting").join(&generated[0])).unwrap();
    assert!(up.contains("RENAME COLUMN color TO colour"), "{up}");
    assert!(
        up.contains("CREATE INDEX things_size ON things (size) ;"),
        "{up}"
    );
    build(&dir);
    let (code, _, stderr) = run("adopting", &["up"], &elsewhere);
    assert_eq!(code, 0, "{stderr}");
    let (_, fresh_dump, _) = run("adopting", &["dump"], &elsewhere);
    let (_, hand_dump, _) = run("adopting", &["dump"], &hand_url);
    assert_eq!(fresh_dump, hand_dump);
    let (code, _, stderr) = run("adopting", &["stamp", "head", "--yes"], &hand_url);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run("adopting", &["down", "--yes"], &hand_url);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        count(&hand_url, "SELECT COUNT(*) FROM things WHERE color = 'red'"),
        2,
        "down renames the column back, its values kept"
    );

    // A feature left out is named, not reported as a bad URL.
    let (code, _, stderr) = run("simple", &["status"], "mysql://root@127.0.0.1:1/app");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("built without stowage's `mysql` feature"),
        "{stderr}"
    );
    assert!(!stderr.contains("not valid"), "{stderr}");

    readme_session(&dir);
}

/// The README's terminal session, as the `app` binary prints it (stdout and
/// stderr in the order written), times and dates as of one run. Set
/// `STOWAGE_UPDATE_README=1` to write it there after a change.
fn readme_session(dir: &Path) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let _ = std::fs::remove_file(dir.join("app.db"));
    let mut session = String::new();
    for args in [
        "migrate up",
        "migrate status",
        "migrate check",
        "migrate new add orders",
        "cargo build",
        "migrate check",
    ] {
        if args == "cargo build" {
            build(dir);
            session.push_str("$ cargo build --quiet\n");
            continue;
        }
        // In the crate's folder, the words as a shell splits them.
        let (_, output) = stowage_tests::interleaved(
            Command::new(target.join("scratch/debug/app"))
                .args(args.split(' '))
                .current_dir(dir)
                .env("DATABASE_URL", "sqlite://app.db"),
        );
        session.push_str(&format!("$ app {args}\n{output}"));
    }
    let session = normalise(&session);
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (start, end) = (
        "<!-- session:start -->\n```console\n",
        "```\n<!-- session:end -->",
    );
    let from = readme.find(start).expect("README has no session block") + start.len();
    let to = readme.find(end).expect("README has no session end");
    if std::env::var_os("STOWAGE_UPDATE_README").is_some() {
        std::fs::write(
            &readme_path,
            format!("{}{session}{}", &readme[..from], &readme[to..]),
        )
        .unwrap();
    } else {
        // Compared with runs of spaces as one: a table's columns are as wide
        // as the widest duration of the run that printed it.
        assert_eq!(
            squeeze(&readme[from..to]),
            squeeze(&session),
            "the README's terminal session is not what the binary prints; \
             run this test with STOWAGE_UPDATE_README=1 to write it"
        );
    }
}

/// Times and dates as one run printed them, so that the session reads the
/// same from run to run: durations `1.2ms`, a table's `0 ms`, instants
/// `2026-11-21T09:30:00.000Z`, a new file's timestamp none (the app's
/// migrations are numbered).
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        // An RFC 3339 instant: 2026-11-21T16:16:21.554Z.
        if rest.len() >= 24
            && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && rest.as_bytes()[10] == b'T'
            && rest.as_bytes()[23] == b'Z'
        {
            out.push_str("2026-11-21T09:30:00.000Z");
            rest = &rest[24..];
            continue;
        }
        // A table's whole milliseconds: `0 ms` (a loaded machine takes 12).
        if out.ends_with(' ') && c.is_ascii_digit() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if rest[digits..].starts_with(" ms") {
                out.push('0');
                rest = &rest[digits..];
                continue;
            }
        }
        // A duration after " in " or "(": 3.5ms, 674.0µs, 1.2s.
        if (out.ends_with(" in ") || out.ends_with('(')) && c.is_ascii_digit() {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let unit_end = rest[end..]
                .find(|c: char| !c.is_alphabetic())
                .map_or(rest.len(), |i| end + i);
            if matches!(&rest[end..unit_end], "ns" | "µs" | "ms" | "s") {
                out.push_str("1.2ms");
                rest = &rest[unit_end..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `text` with every run of spaces as one space.
fn squeeze(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out
}

/// The newest timestamp version in a layout's folder.
fn stamp_of(dir: &Path, bin: &str) -> String {
    let mut stamps: Vec<String> = std::fs::read_dir(dir.join(folder(bin)))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.split_once('_').map(|(stamp, _)| stamp.to_owned()))
        .collect();
    stamps.sort();
    stamps.pop().unwrap()
}

/// A slow run's table (wider columns, two-digit milliseconds) reads as the
/// README's, and a different description does not.
#[test]
fn a_slow_runs_session_reads_as_the_readmes() {
    let calm = "\
VERSION  STATE    APPLIED AT (UTC)          DB TIME  DESCRIPTION
      1  applied  2026-11-21T09:30:00.000Z     0 ms  create users
applied 1 create users in 1.2ms
";
    let slow = "\
VERSION  STATE    APPLIED AT (UTC)          DB TIME  DESCRIPTION
      1  applied  2026-11-22T17:01:09.123Z    12 ms  create users
applied 1 create users in 13.25ms
";
    assert_eq!(squeeze(&normalise(slow)), squeeze(calm));
    let other = slow.replace("create users\napplied", "create user\napplied");
    assert_ne!(squeeze(&normalise(&other)), squeeze(calm));
}

/// One number a query on a SQLite database gives.
fn count(url: &str, sql: &'static str) -> i64 {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let rows = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        rows
    })
}

/// On MariaDB, through an application binary built as the README says but
/// with stowage's `mysql` feature: a key that an unchanged foreign key uses
/// as its index changed by hand (vaultwarden's `twofactor`), `new
/// --from-database URL` writes the change; rebuilt, `up` applies it on a
/// database at the version before, rows kept, and that database's `dump`
/// equals the hand-changed one's. The server refuses to drop such a key
/// while the foreign key stands (error 1553), so the generated file moves
/// the foreign key around it.
#[test]
fn mysql_new_from_database_moves_a_foreign_key_around_its_key() {
    mysql_new_from_database(&HandChange {
        crate_name: "scratch-new-mysql",
        bin: "mysql_app",
        migration: "CREATE TABLE users (uuid CHAR(36) NOT NULL PRIMARY KEY);\n\
                    CREATE TABLE twofactor (uuid CHAR(36) NOT NULL PRIMARY KEY, user_uuid CHAR(36) NOT NULL,\n\
                      atype INTEGER NOT NULL, enabled BOOLEAN NOT NULL DEFAULT TRUE,\n\
                      UNIQUE KEY user_uuid (user_uuid, atype),\n\
                      CONSTRAINT twofactor_users FOREIGN KEY (user_uuid) REFERENCES users (uuid));\n",
        rows: "INSERT INTO users VALUES ('u1'), ('u2');
               INSERT INTO twofactor (uuid, user_uuid, atype) VALUES ('a', 'u1', 0), ('b', 'u2', 0);",
        // The key made unique by another column, by hand; the foreign key as it was.
        by_hand: "ALTER TABLE twofactor DROP KEY user_uuid, ADD UNIQUE KEY user_uuid (user_uuid, enabled);",
        up_holds: "DROP FOREIGN KEY `twofactor_users`",
        dump_holds: "UNIQUE KEY `user_uuid`",
    });
}

/// On MariaDB, through an application binary as above: a surrogate
/// auto-increment key given by hand to a table keyed by a UUID (hydra's
/// `hydra_client`). The server refuses an auto-increment column without
/// its key between two statements (error 1075), so the generated file
/// alters the table in one.
#[test]
fn mysql_new_from_database_adds_an_auto_increment_key_in_one_statement() {
    mysql_new_from_database(&HandChange {
        crate_name: "scratch-new-mysql-auto",
        bin: "mysql_auto",
        migration: "CREATE TABLE users (uuid CHAR(36) NOT NULL PRIMARY KEY);\n\
                    CREATE TABLE twofactor (uuid CHAR(36) NOT NULL PRIMARY KEY, user_uuid CHAR(36) NOT NULL);\n",
        rows: "INSERT INTO users VALUES ('u1'), ('u2');
               INSERT INTO twofactor (uuid, user_uuid) VALUES ('a', 'u1'), ('b', 'u2');",
        by_hand: "ALTER TABLE twofactor DROP PRIMARY KEY,
                    ADD COLUMN pk BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                    ADD UNIQUE KEY twofactor_uuid (uuid);",
        up_holds: "ADD COLUMN `pk` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
        dump_holds: "UNIQUE KEY `twofactor_uuid`",
    });
}

/// A change made by hand to a MariaDB database that `new --from-database`
/// must write as a migration.
struct HandChange {
    /// The scratch crate's name, and its binary's (each its own: the
    /// scratch crates build into one folder).
    crate_name: &'static str,
    bin: &'static str,
    /// The first migration, the rows put in after it, and the change made
    /// by hand to one database at it.
    migration: &'static str,
    rows: &'static str,
    by_hand: &'static str,
    /// What the written up holds, and what the changed database's dump
    /// holds.
    up_holds: &'static str,
    dump_holds: &'static str,
}

/// The README's binary with `mysql`: two databases at the first
/// migration, with rows; `change.by_hand` made to one; `new key
/// --from-database` against it; rebuilt, `up` on the other gives the same
/// `dump` with the rows (of `twofactor`) kept; `down` gives the dump from
/// before.
fn mysql_new_from_database(change: &HandChange) {
    use stowage_tests::Backend::MySql;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (hand, elsewhere) = runtime.block_on(async {
        (
            stowage_tests::fresh(MySql, "hand").await,
            stowage_tests::fresh(MySql, "elsewhere").await,
        )
    });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(change.crate_name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src/bin")).unwrap();
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    let runtime_crate = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
    let dependencies = readme_block("# Cargo.toml, for `app migrate …`")
        .replace("\"sqlite\"", "\"mysql\"")
        .replace(
            "stowage-migrate = { version = \"0.1\",",
            &format!(
                "stowage-migrate = {{ version = \"0.1\", path = {:?},",
                runtime_crate.canonicalize().unwrap()
            ),
        );
    assert!(
        dependencies.contains("\"mysql\", \"cli\""),
        "{dependencies}"
    );
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[workspace]\n\n{dependencies}\n",
            change.crate_name
        ),
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    std::fs::write(
        // Not `app`: the other scratch crate's binary of that name is built
        // into the same folder.
        dir.join(format!("src/bin/{}.rs", change.bin)),
        "static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();\n\
         fn main() { stowage::cli::main(&MIGRATOR) }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("build.rs"),
        "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
    )
    .unwrap();
    std::fs::write(dir.join("migrations/1_twofactor.sql"), change.migration).unwrap();
    build(&dir);
    let app = |args: &[&str], url: &str| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
        let output = Command::new(target.join("scratch/debug").join(change.bin))
            .args(args)
            .current_dir(&dir)
            .env("DATABASE_URL", url)
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let rows = change.rows;
    for db in [&hand, &elsewhere] {
        let (code, stdout, stderr) = app(&["up"], &db.url);
        assert_eq!(code, 0, "{stdout}{stderr}");
        stowage_tests::native::client(MySql, &db.url, rows);
    }
    stowage_tests::native::client(MySql, &hand.url, change.by_hand);
    let (code, stdout, stderr) = app(
        &["new", "key", "--from-database", &hand.url],
        &elsewhere.url,
    );
    assert_eq!(code, 0, "{stderr}");
    let written: Vec<&str> = stdout.lines().collect();
    assert_eq!(written.len(), 2, "an up and a down: {stdout}");
    let up = std::fs::read_to_string(dir.join(written[0])).unwrap();
    assert!(
        up.contains(change.up_holds),
        "the written up holds {}:\n{up}",
        change.up_holds
    );
    let (_, before_dump, _) = app(&["dump"], &elsewhere.url);
    build(&dir);
    let (code, stdout, stderr) = app(&["up"], &elsewhere.url);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, fresh_dump, _) = app(&["dump"], &elsewhere.url);
    let (_, hand_dump, _) = app(&["dump"], &hand.url);
    assert!(fresh_dump.contains(change.dump_holds), "{fresh_dump}");
    assert_eq!(fresh_dump, hand_dump);
    let kept: i64 = runtime.block_on(async {
        let pool = sqlx::MySqlPool::connect(&elsewhere.url).await.unwrap();
        let kept = sqlx::query_scalar("SELECT COUNT(*) FROM twofactor")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        kept
    });
    assert_eq!(kept, 2, "the rows are kept");
    let (code, stdout, stderr) = app(&["down", "--yes"], &elsewhere.url);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, after_down, _) = app(&["dump"], &elsewhere.url);
    assert_eq!(after_down, before_dump);
}
