//! Generate the benchmark's migration sets: 500 migrations, each one table,
//! one index and three rows, in sqlx's layout (read by stowage and
//! `sqlx::migrate!`) and refinery's, for each dialect; the first 10 and
//! 100 of them, for the test-database benchmark; and one DDL-heavy schema
//! script (`generated/ddl`), for the comparison with each database's client.

use std::fmt::Write as _;
use std::path::Path;

const MIGRATIONS: usize = 500;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("generated");
    for dialect in ["postgres", "mysql", "sqlite"] {
        let id = match dialect {
            "postgres" => "id BIGSERIAL PRIMARY KEY",
            "mysql" => "id BIGINT AUTO_INCREMENT PRIMARY KEY",
            _ => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        };
        for i in 1..=MIGRATIONS {
            let mut sql = String::new();
            writeln!(
                sql,
                "CREATE TABLE t_{i} ({id}, name VARCHAR(64) NOT NULL, n INTEGER NOT NULL);"
            )
            .unwrap();
            writeln!(sql, "CREATE INDEX t_{i}_name ON t_{i} (name);").unwrap();
            for (n, name) in ["a", "b", "c"].iter().enumerate() {
                writeln!(sql, "INSERT INTO t_{i} (name, n) VALUES ('{name}', {n});").unwrap();
            }
            write(
                &root.join(format!("sqlx/{dialect}/{i:04}_table_{i}.sql")),
                &sql,
            );
            for size in [10, 100] {
                if i <= size {
                    write(
                        &root.join(format!("sqlx{size}/{dialect}/{i:04}_table_{i}.sql")),
                        &sql,
                    );
                }
            }
            write(
                &root.join(format!("refinery/{dialect}/V{i}__table_{i}.sql")),
                &sql,
            );
        }
        write(
            &root.join(format!("ddl/{dialect}/0001_schema.sql")),
            &schema(id),
        );
    }
}

/// A schema script as projects write their first migration: 100 DDL
/// statements, no rows. 40 tables, each but the first referring to the one
/// before it; an index on 30 of them; a column added to 30 of them.
fn schema(id: &str) -> String {
    let mut sql = String::new();
    for i in 1..=40 {
        let parent = match i {
            1 => String::new(),
            _ => format!(
                ",\n    parent_id BIGINT,\n    FOREIGN KEY (parent_id) REFERENCES s_{} (id)",
                i - 1
            ),
        };
        writeln!(
            sql,
            "CREATE TABLE s_{i} (\n    {id},\n    name VARCHAR(100) NOT NULL,\n    \
             created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP{parent}\n);"
        )
        .unwrap();
    }
    for i in 1..=30 {
        writeln!(sql, "CREATE INDEX s_{i}_name ON s_{i} (name);").unwrap();
    }
    for i in 1..=30 {
        writeln!(sql, "ALTER TABLE s_{i} ADD COLUMN note VARCHAR(200);").unwrap();
    }
    sql
}

fn write(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}
