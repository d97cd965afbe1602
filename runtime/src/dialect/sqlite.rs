//! SQLite: the lock is the run's own `BEGIN IMMEDIATE` transaction (with a
//! busy timeout), and each migration runs in a savepoint of it.

use super::{At, Done, ErrorSign, HistoryTypes, SqlDialect, Under, Vocabulary};
use crate::engine::connection::{Conn, Ty};
use crate::engine::history::{Entry, RowState, Table, Took};
use crate::engine::lock::{Hold, Request, Settings};
use crate::engine::statements::{Syntax, split, spot};
use crate::error::Spot;
use crate::engine::stepwise;
use crate::{Dialect, Error, Migration};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// SQLite.
#[derive(Debug)]
pub(crate) struct Sqlite;

/// Turns foreign-key enforcement back on after a run.
const FOREIGN_KEYS_ON: &str = "PRAGMA foreign_keys = ON";

/// Whether migrations are checked with `foreign_key_check`, kept in the
/// lock's [`Settings`] for a run.
struct ForeignKeys;

impl ForeignKeys {
    /// The connection does not enforce foreign keys: neither does stowage.
    const IGNORED: u8 = 0;
    /// Enforced, and no table declares one yet: no row can violate one.
    const NONE_YET: u8 = 1;
    /// Enforced, and some table declares one: check.
    const CHECKED: u8 = 2;

    fn get(settings: &Settings) -> u8 {
        settings.foreign_keys.load(Ordering::Relaxed)
    }

    /// A migration that declares a foreign key starts the checks.
    fn declared_by(settings: &Settings, sql: &str) {
        if Self::get(settings) == Self::NONE_YET && sql.to_ascii_uppercase().contains("REFERENCES") {
            settings.foreign_keys.store(Self::CHECKED, Ordering::Relaxed);
        }
    }

    /// The violations `conn`'s database holds, when it is checked.
    async fn violations(settings: &Settings, conn: &mut Conn<'_>) -> Result<Vec<String>, Error> {
        if Self::get(settings) == Self::CHECKED {
            Sqlite.integrity_problems(conn).await
        } else {
            Ok(Vec::new())
        }
    }
}

/// SQLite's words.
const VOCABULARY: Vocabulary = Vocabulary {
    dialect: Dialect::Sqlite,
    syntax: Syntax::STANDARD,
    quote: '"',
    bytes: ["X'", "'"],
    text: ["CAST(", " AS TEXT)"],
    history_types: HistoryTypes {
        integer: "INTEGER",
        bytes: "BLOB",
        applied_at: "TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))",
        ..HistoryTypes::STANDARD
    },
    // A schema is an attached database, which the application attaches.
    create_schema: None,
    applied_at_as_text: "applied_at",
    cast_types: ["BIGINT", "TEXT"],
    undefined_table: ErrorSign::starts("no such table"),
    undefined_column: ErrorSign::starts("no such column"),
};

impl SqlDialect for Sqlite {
    fn vocabulary(&self) -> &'static Vocabulary {
        &VOCABULARY
    }


    /// `PRAGMA query_only`; a file opened read-only is found by its first
    /// write (see `Error::failed`).
    fn read_only<'c>(&'c self, conn: &'c mut Conn<'_>) -> Done<'c, Option<String>> {
        Box::pin(async move {
            let query_only = conn
                .fetch_one("PRAGMA query_only".to_owned(), Ty::I64)
                .await
                .map_err(Error::db("cannot ask whether the database takes writes"))?
                .and_then(|cell| cell.i64());
            Ok((query_only == Some(1))
                .then(|| "the connection is query-only (PRAGMA query_only)".to_owned()))
        })
    }

    /// Foreign-key enforcement is turned off first, outside any transaction
    /// (inside one the pragma does nothing), so that SQLite's own procedure
    /// for rebuilding a table does not cascade into other tables; each
    /// migration is checked with `PRAGMA foreign_key_check` instead
    /// ([`integrity_problems`](SqlDialect::integrity_problems)), and
    /// enforcement is turned on again when the lock is released.
    fn lock<'c>(&'c self, at: At<'c, '_>, request: &'c Request) -> Done<'c, Hold> {
        let At { conn, .. } = at;
        Box::pin(async move {
            let enforced = conn
                .fetch_one("PRAGMA foreign_keys".to_owned(), Ty::I64)
                .await
                .map_err(Error::db("cannot read the SQLite foreign_keys setting"))?
                .and_then(|cell| cell.i64())
                == Some(1);
            let restore = enforced.then_some(FOREIGN_KEYS_ON);
            // Only a table declared with REFERENCES has foreign keys.
            let declared = conn
                .fetch_one(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE sql LIKE '%REFERENCES%')"
                        .to_owned(),
                    Ty::I64,
                )
                .await
                .map_err(Error::db("cannot look for foreign keys"))?
                .and_then(|cell| cell.i64())
                != Some(0);
            let foreign_keys = match (enforced, declared) {
                (false, _) => ForeignKeys::IGNORED,
                (true, false) => ForeignKeys::NONE_YET,
                (true, true) => ForeignKeys::CHECKED,
            };
            let millis = request.timeout.as_millis().min(i32::MAX as u128);
            conn.script(format!(
                "PRAGMA busy_timeout = {millis}; PRAGMA foreign_keys = OFF"
            ))
            .await
            .map_err(Error::db("cannot set up the SQLite connection for migrating"))?;
            let locked = match conn.script("BEGIN IMMEDIATE".to_owned()).await {
                Ok(()) => {
                    return Ok(Hold {
                        restore,
                        settings: Settings {
                            foreign_keys: foreign_keys.into(),
                        },
                        ..Hold::default()
                    });
                }
                Err(error) if is_busy(&error) => Error::LockTimeout {
                    waited: request.timeout,
                    holder: Some("another connection writing to the database file".to_owned()),
                },
                Err(error) => {
                    Error::db("cannot lock the SQLite database (BEGIN IMMEDIATE)")(error)
                }
            };
            if let Some(sql) = restore {
                // A connection the caller lent must not keep foreign keys off.
                let _ = conn.script(sql.to_owned()).await;
            }
            Err(locked)
        })
    }

    fn integrity_problems<'c>(&'c self, conn: &'c mut Conn<'_>) -> Done<'c, Vec<String>> {
        Box::pin(async move {
            let sql = "SELECT \"table\", rowid, parent FROM pragma_foreign_key_check LIMIT 10";
            let rows = conn
                .fetch(sql.to_owned(), &[Ty::Text, Ty::OptI64, Ty::Text])
                .await
                .map_err(Error::db("cannot check foreign keys (PRAGMA foreign_key_check)"))?;
            Ok(rows
                .iter()
                .map(|row| {
                    let text = |i: usize| row.get(i).and_then(|c| c.text()).unwrap_or_default();
                    let rowid = row.get(1).and_then(|c| c.i64()).map_or_else(
                        || "a row".to_owned(),
                        |rowid| format!("rowid {rowid}"),
                    );
                    format!("`{}` {rowid} references `{}`", text(0), text(2))
                })
                .collect())
        })
    }

    fn unlock<'c>(&'c self, at: At<'c, '_>, _hold: Hold, keep: bool) -> Done<'c> {
        let At { conn, .. } = at;
        let sql = if keep { "COMMIT" } else { "ROLLBACK" };
        Box::pin(async move {
            conn.script(sql.to_owned()).await.map_err(Error::db(format!(
                "cannot end the SQLite transaction ({sql})"
            )))
        })
    }

    /// The lock is a transaction: commit the work so far, and take it again
    /// in [`resume`](SqlDialect::resume).
    fn suspend<'c>(&'c self, conn: &'c mut Conn<'_>) -> Done<'c> {
        Box::pin(async move {
            conn.script("COMMIT".to_owned())
                .await
                .map_err(Error::db("cannot commit before a no-transaction migration"))
        })
    }

    fn resume<'c>(&'c self, conn: &'c mut Conn<'_>) -> Done<'c> {
        Box::pin(async move {
            conn.script("BEGIN IMMEDIATE".to_owned())
                .await
                .map_err(Error::db(
                    "cannot lock the SQLite database again after a no-transaction migration",
                ))
        })
    }

    fn apply<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration, by: &'c str) -> Done<'c> {
        let Under { conn, table, settings } = on;
        ForeignKeys::declared_by(settings, m.up_sql());
        if m.no_transaction() {
            return Box::pin(stepwise::apply(conn, table, m, by));
        }
        Box::pin(apply_in_savepoint(conn, table, settings, m, by))
    }

    fn revert<'c>(&'c self, on: Under<'c, '_>, m: &'c Migration) -> Done<'c> {
        let Under { conn, table, settings } = on;
        if m.no_transaction() {
            return Box::pin(stepwise::revert(conn, table, m));
        }
        Box::pin(async move {
            let down = m.down_sql().unwrap_or_default();
            let script = format!(
                "SAVEPOINT stowage_undo;\n{down}\n;\n{};",
                table.delete_sql(m.version())
            );
            // The savepoint is released once the foreign keys are checked.
            let result = match conn.script_counted(script, &[]).await {
                Ok(()) => match ForeignKeys::violations(settings, conn).await? {
                    violations if violations.is_empty() => Ok(()),
                    violations => Err(Error::ForeignKeyViolation {
                        version: m.version(),
                        source_path: m.source_path().to_owned(),
                        violations,
                    }),
                },
                Err((done, error)) => {
                    // Statement `done` of the script failed: the savepoint
                    // is its first.
                    let statements = split(down, Sqlite.syntax());
                    let spot = done
                        .checked_sub(1)
                        .and_then(|index| Some((index, *statements.get(index)?)))
                        .map_or_else(Spot::default, |(index, statement)| {
                            spot(down, index, statement, Sqlite.syntax())
                        });
                    Err(Error::undo_failed(m, spot)(error))
                }
            };
            let end = match result {
                Ok(()) => "RELEASE stowage_undo",
                Err(_) => "ROLLBACK TO stowage_undo; RELEASE stowage_undo;",
            };
            conn.script(end.to_owned())
                .await
                .map_err(Error::db("cannot end the undo's savepoint"))?;
            result
        })
    }
}

/// Inside the run's `BEGIN IMMEDIATE`, the migration and its row in a savepoint.
async fn apply_in_savepoint(
    conn: &mut Conn<'_>,
    table: &Table,
    settings: &Settings,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    // SQLite prepares and runs one statement at a time: the results counted
    // before the error (the savepoint's first) say which statement failed.
    let result = conn
        .script_counted(
            format!("SAVEPOINT stowage_migration;\n{}\n;", m.up_sql()),
            &[],
        )
        .await;
    let result = match result {
        Ok(()) => {
            let entry = Entry::of(m, applied_by);
            conn.execute(
                table.insert_sql(&entry, RowState::Applied, Took::since(started)),
            )
            .await
            .map_err(Error::failed(m, Spot::default(), true))
        }
        Err((done, error)) => {
            let statements = split(m.up_sql(), Sqlite.syntax());
            let spot = done
                .checked_sub(1)
                .and_then(|index| Some((index, *statements.get(index)?)))
                .map_or_else(Spot::default, |(index, statement)| {
                    spot(m.up_sql(), index, statement, Sqlite.syntax())
                });
            Err(Error::failed(m, spot, true)(error))
        }
    };
    let result = match result {
        Ok(_) => match ForeignKeys::violations(settings, conn).await? {
            violations if violations.is_empty() => Ok(()),
            violations => Err(Error::ForeignKeyViolation {
                version: m.version(),
                source_path: m.source_path().to_owned(),
                violations,
            }),
        },
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => conn
            .script("RELEASE stowage_migration".to_owned())
            .await
            .map_err(Error::db("cannot release the migration's savepoint")),
        Err(error) => {
            conn.script("ROLLBACK TO stowage_migration; RELEASE stowage_migration;".to_owned())
                .await
                .map_err(Error::not_rolled_back(m))?;
            Err(error)
        }
    }
}

fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.message().contains("locked") || db.message().contains("busy"))
}
