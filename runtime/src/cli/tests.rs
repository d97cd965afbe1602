use super::*;
use crate::Error;

/// One of each error variant, as the library makes them; the match
/// without a wildcard makes a new variant fail to compile here until
/// it has a sample.
fn every_error() -> Vec<Error> {
    let source = || sqlx::Error::PoolTimedOut;
    let path = || "postgres/2_add_email.sql".to_owned();
    let samples = vec![
        Error::InvalidSource {
            problems: vec!["2_x.sql: two files with version 2".to_owned()],
        },
        Error::InvalidConfig("the table name is empty".to_owned()),
        Error::NoMigrationsForDialect {
            dialect: crate::Dialect::MySql,
        },
        Error::InvalidTarget("version 42 is not one of this binary's".to_owned()),
        Error::Irreversible {
            version: 2,
            source_path: path(),
        },
        Error::UndoFailed {
            version: 2,
            source_path: path(),
            statement: Some(1),
            line: Some(2),
            excerpt: Some("DROP TABLE x".to_owned()),
            source: source(),
        },
        Error::ChainMismatch {
            version: 2,
            source_path: path(),
        },
        Error::Connect {
            url: "postgres://app:***@db/app".to_owned(),
            attempts: 3,
            waited: Duration::from_secs(2),
            reason: "connection refused".to_owned(),
        },
        Error::UnsupportedBackend("Oracle".to_owned()),
        Error::MissingFeature {
            scheme: "mysql".to_owned(),
            feature: "mysql",
        },
        Error::InvalidUrl {
            url: "postgres:/x".to_owned(),
            reason: "no host".to_owned(),
        },
        Error::Database {
            context: "cannot read the history table".to_owned(),
            source: source(),
        },
        Error::LockTimeout {
            waited: Duration::from_secs(60),
            holder: Some("host 1".to_owned()),
        },
        Error::ChecksumMismatch {
            version: 2,
            source_path: path(),
            applied: "00".to_owned(),
            embedded: "01".to_owned(),
        },
        Error::UnknownVersion {
            version: 9,
            description: "later".to_owned(),
            undo_to: Some(8),
        },
        Error::UnknownVersion {
            version: 9,
            description: "later".to_owned(),
            undo_to: None,
        },
        Error::StoredDownModified {
            version: 9,
            description: "later".to_owned(),
        },
        Error::OutOfOrder {
            version: 2,
            source_path: path(),
            newest_applied: 3,
        },
        Error::FailedMigration {
            version: 2,
            description: "add email".to_owned(),
            statement: Some(1),
            error: Some("no such table".to_owned()),
        },
        Error::ForeignKeyViolation {
            version: 2,
            source_path: path(),
            violations: vec!["posts rowid 1 → users".to_owned()],
        },
        Error::TakeOver {
            tool: "sqlx".to_owned(),
            table: "_sqlx_migrations".to_owned(),
            problem: "version 3 is not in this binary".to_owned(),
        },
        Error::UnsupportedStatement {
            version: 2,
            source_path: path(),
            line: 3,
            excerpt: "\\connect app".to_owned(),
            reason: "is a psql meta-command".to_owned(),
        },
        Error::ReadOnly {
            reason: "it is a standby".to_owned(),
        },
        Error::ExistingSchema {
            objects: vec!["users".to_owned()],
            matching: None,
        },
        Error::ExistingSchema {
            objects: vec!["users".to_owned()],
            matching: Some(2),
        },
        Error::NoMatchingVersion {
            closest: Some(2),
            differences: vec!["table users differs".to_owned()],
        },
        Error::SchemaFile {
            path: "schema.sql".to_owned(),
            problem: "does not exist".to_owned(),
        },
        Error::PlaceholderUnset {
            source_path: path(),
            name: "role".to_owned(),
            line: 1,
            env_var: "STOWAGE_PLACEHOLDER_ROLE".to_owned(),
        },
        Error::CallbackFailed {
            event: crate::Event::AfterEachMigrate,
            callback: "afterEachMigrate.sql".to_owned(),
            version: Some(2),
            message: "syntax error".to_owned(),
            source: Box::new(source()),
        },
        Error::MigrationFailed {
            version: 2,
            source_path: path(),
            statement: Some(1),
            line: Some(3),
            excerpt: Some("ALTER TABLE x".to_owned()),
            message: "no such table".to_owned(),
            transactional: false,
            source: source(),
        },
    ];
    for error in &samples {
        match error {
            Error::InvalidSource { .. }
            | Error::InvalidConfig(_)
            | Error::NoMigrationsForDialect { .. }
            | Error::InvalidTarget(_)
            | Error::Irreversible { .. }
            | Error::UndoFailed { .. }
            | Error::ChainMismatch { .. }
            | Error::Connect { .. }
            | Error::UnsupportedBackend(_)
            | Error::MissingFeature { .. }
            | Error::InvalidUrl { .. }
            | Error::Database { .. }
            | Error::LockTimeout { .. }
            | Error::ChecksumMismatch { .. }
            | Error::UnknownVersion { .. }
            | Error::StoredDownModified { .. }
            | Error::OutOfOrder { .. }
            | Error::FailedMigration { .. }
            | Error::ForeignKeyViolation { .. }
            | Error::TakeOver { .. }
            | Error::UnsupportedStatement { .. }
            | Error::ReadOnly { .. }
            | Error::SchemaFile { .. }
            | Error::ExistingSchema { .. }
            | Error::NoMatchingVersion { .. }
            | Error::PlaceholderUnset { .. }
            | Error::CallbackFailed { .. }
            | Error::MigrationFailed { .. } => {}
        }
    }
    samples
}

/// The subcommands, as typed.
const SUBCOMMANDS: [&str; 15] = [
    "up", "down", "status", "stamp", "verify", "check", "wait", "plan", "adopt", "show", "new",
    "dump", "drift", "baseline", "repair",
];

/// Every command an error's advice names (a `…` span starting with a
/// subcommand) is one the binary takes as written: every argument
/// filled in, nothing left to guess.
#[test]
fn every_command_in_the_advice_runs_as_written() {
    let mut checked = 0;
    for error in every_error() {
        let text = error.to_string();
        for (i, span) in text.split('`').enumerate() {
            let words: Vec<&str> = span.split_whitespace().collect();
            let words = match words.first() {
                Some(&"migrate") => &words[1..],
                _ => &words[..],
            };
            if i % 2 == 0 || !words.first().is_some_and(|w| SUBCOMMANDS.contains(w)) {
                continue;
            }
            let parsed = <Standalone as clap::Parser>::try_parse_from(
                std::iter::once("app").chain(words.iter().copied()),
            );
            assert!(
                parsed.is_ok(),
                "`{span}` in \"{text}\" is not a command the binary takes: {}",
                parsed.err().map(|e| e.to_string()).unwrap_or_default()
            );
            checked += 1;
        }
    }
    // repair --accept-checksums (twice), repair --clear-failed 2
    // (twice: a failed row, a migration that failed outside a
    // transaction).
    assert!(checked >= 4, "only {checked} commands found in the advice");
}
