//! SQLite test databases: files in the temporary folder; a template file
//! per migration set, copied per test (about a millisecond, so no spares).

use super::TestDb;
use super::names::{KEPT, PREFIX, TEMPLATE, kept_name, sqlite_dir};
use super::server::{Entry, TestServer, Wanted, test_error};
use crate::engine::sql_dialect::BoxFuture;
use crate::{Error, Migrator};
use sqlx::Connection;
use std::time::Duration;

/// SQLite.
#[derive(Debug)]
pub(super) struct Sqlite;

/// The file of database `name`.
fn file(name: &str) -> std::path::PathBuf {
    sqlite_dir().join(format!("{name}.db"))
}

impl TestServer for Sqlite {
    fn database_url(&self, _server: &str, name: &str) -> Result<String, Error> {
        std::fs::create_dir_all(sqlite_dir()).map_err(|e| {
            Error::InvalidConfig(format!("cannot create {}: {e}", sqlite_dir().display()))
        })?;
        Ok(format!("sqlite://{}", file(name).display()))
    }

    fn create<'a>(
        &'a self,
        db: &'a mut TestDb,
        wanted: Wanted<'a>,
    ) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        Box::pin(async move {
            ensure_template(wanted.template, wanted.migrator).await?;
            let from = file(wanted.template);
            db.created = true;
            std::fs::copy(&from, file(&db.name)).map_err(|e| {
                Error::InvalidConfig(format!(
                    "cannot copy the SQLite template {}: {e}",
                    from.display()
                ))
            })?;
            // Too quick to be worth a spare.
            Ok(None)
        })
    }

    fn create_empty<'a>(&'a self, db: &'a mut TestDb) -> BoxFuture<'a, Result<(), Error>> {
        db.created = true;
        let created = std::fs::File::create(file(&db.name))
            .map(drop)
            .map_err(|e| Error::InvalidConfig(format!("cannot create a SQLite test file: {e}")));
        Box::pin(std::future::ready(created))
    }

    fn makes_spares(&self) -> bool {
        false
    }

    fn make_spare<'a>(
        &'a self,
        _server: &'a str,
        _template: &'a str,
        _wanted: usize,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn copy_template<'a>(
        &'a self,
        _server: &'a str,
        template: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        // Complete once in place: it is built aside and renamed.
        let copied = match file(template).exists() {
            true => std::fs::copy(file(template), file(name)).map(|_| true),
            false => Ok(false),
        };
        Box::pin(std::future::ready(copied.map_err(|e| {
            Error::InvalidConfig(format!("cannot copy the SQLite template: {e}"))
        })))
    }

    fn drop_database<'a>(
        &'a self,
        _server: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = std::fs::remove_file(file(name));
        Box::pin(std::future::ready(Ok(())))
    }

    fn inventory<'a>(&'a self, _server: &'a str) -> BoxFuture<'a, Result<Vec<Entry>, Error>> {
        // Files: no sessions to ask about; a live process's are its own.
        let entries = std::fs::read_dir(sqlite_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".db")?.to_owned();
                [PREFIX, KEPT, TEMPLATE]
                    .iter()
                    .any(|p| name.starts_with(p))
                    .then_some(Entry {
                        name,
                        in_use: false,
                        spare_of: None,
                        owner: None,
                        kept: false,
                    })
            })
            .collect();
        Box::pin(std::future::ready(Ok(entries)))
    }

    fn remove<'a>(
        &'a self,
        _server: &'a str,
        entry: &'a Entry,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let removed = std::fs::remove_file(file(&entry.name)).is_ok();
        if removed && entry.name.starts_with(TEMPLATE) {
            let _ = std::fs::remove_file(sqlite_dir().join(format!("{}.lock", entry.name)));
        }
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn keep<'a>(&'a self, _server: &'a str, name: &'a str) -> BoxFuture<'a, Result<String, Error>> {
        let kept = kept_name(name);
        let renamed = std::fs::rename(file(name), file(&kept))
            .map(|()| kept)
            .map_err(|e| {
                Error::InvalidConfig(format!("cannot rename the SQLite file of {name}: {e}"))
            });
        Box::pin(std::future::ready(renamed))
    }
}

/// Build the template file once, under a file lock, unless it is there.
async fn ensure_template(name: &str, migrator: &Migrator) -> Result<(), Error> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| Error::InvalidConfig(format!("SQLite template: {what}: {e}"))
    };
    let dir = sqlite_dir();
    std::fs::create_dir_all(&dir).map_err(io("cannot create the folder"))?;
    let path = dir.join(format!("{name}.db"));
    if path.exists() {
        return Ok(());
    }
    // One process builds it under a file lock, into a temporary file that is
    // renamed into place when complete.
    let lock = std::fs::File::create(dir.join(format!("{name}.lock")))
        .map_err(io("cannot create the lock"))?;
    lock.lock().map_err(io("cannot lock"))?;
    if path.exists() {
        return Ok(());
    }
    let building = dir.join(format!("{name}.{}.building", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", building.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .map_err(test_error("cannot create the template", "sqlite"))?;
    migrator.run(&mut conn).await?;
    conn.close()
        .await
        .map_err(test_error("cannot close the template", "sqlite"))?;
    std::fs::rename(&building, &path).map_err(io("cannot move the template into place"))?;
    Ok(())
}
