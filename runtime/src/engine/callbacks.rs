//! A run's work, prepared before anything runs (placeholders replaced,
//! statements checked), and its callbacks: the callback files and Rust
//! hooks of each [`Event`], on the migration connection.

use super::connection::Conn;
use super::history::Table;
use super::run::refuse_unsupported;
use crate::embedded::hooks::{Execute, HookContext};
use crate::error::server_message;
use crate::{Error, Event, Migration, MigrationSet, Migrator};
use std::future::Future;
use std::pin::Pin;

impl Execute for Conn<'_> {
    fn execute_script(
        &mut self,
        sql: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
        Box::pin(self.script(sql))
    }
}

/// What a run will apply, and the callback files it will run, each with
/// its placeholders replaced.
pub(crate) struct Work {
    /// The pending versioned migrations, oldest first.
    pub(crate) migrations: Vec<Migration>,
    /// The repeatable migrations to apply, by description.
    pub(crate) repeatables: Vec<Migration>,
    /// The callback files: event, path, SQL.
    callbacks: Vec<(Event, String, String)>,
}

impl Work {
    /// Replace the placeholders of everything that will run and check each
    /// migration's statements: every problem is found before anything runs.
    pub(crate) fn prepare(
        migrator: &Migrator,
        table: &Table,
        set: &MigrationSet,
        pending: &[&Migration],
        repeatables: &[&Migration],
    ) -> Result<Work, Error> {
        let resolve = |path: &str, sql: &str| migrator.placeholders().resolve(path, sql);
        let migration = |m: &Migration| {
            let up = resolve(m.source_path(), m.up_sql())?;
            refuse_unsupported(table, m, &up)?;
            Ok::<_, Error>(m.with_sql(up, m.down_sql().map(str::to_owned)))
        };
        let mut callbacks = Vec::new();
        if !pending.is_empty() || !repeatables.is_empty() {
            for event in Event::ALL {
                for callback in set.callbacks(event) {
                    let sql = resolve(callback.path(), callback.sql())?;
                    callbacks.push((event, callback.path().to_owned(), sql));
                }
            }
        }
        Ok(Work {
            migrations: pending.iter().map(|m| migration(m)).collect::<Result<_, _>>()?,
            repeatables: repeatables
                .iter()
                .map(|m| migration(m))
                .collect::<Result<_, _>>()?,
            callbacks,
        })
    }

    /// Whether the run has anything to apply.
    pub(crate) fn is_empty(&self) -> bool {
        self.migrations.is_empty() && self.repeatables.is_empty()
    }

    /// Run the callback files of `event`, then the migrator's hooks for it.
    pub(crate) async fn fire(
        &self,
        migrator: &Migrator,
        conn: &mut Conn<'_>,
        table: &Table,
        event: Event,
        migration: Option<&Migration>,
        took: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        let version = migration.filter(|m| !m.is_repeatable()).map(Migration::version);
        for (_, path, sql) in self.callbacks.iter().filter(|(e, _, _)| *e == event) {
            tracing::debug!(%event, callback = path, "running callback file");
            conn.script(sql.clone())
                .await
                .map_err(|source| Error::CallbackFailed {
                    event,
                    callback: path.clone(),
                    version,
                    message: server_message(&source),
                    source: Box::new(source),
                })?;
        }
        for hook in migrator.hooks(event) {
            let context = HookContext {
                event,
                migration,
                took,
                dialect: table.dialect(),
                conn: &mut *conn,
            };
            (hook.run)(context)
                .await
                .map_err(|source| Error::CallbackFailed {
                    event,
                    callback: "a Rust hook".to_owned(),
                    version,
                    message: source.to_string(),
                    source,
                })?;
        }
        Ok(())
    }
}
