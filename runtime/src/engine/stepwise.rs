//! Migrations run statement by statement, outside any transaction: the
//! `no-transaction` ones on PostgreSQL and SQLite, and every undo that cannot
//! run in a transaction (MySQL's, whose DDL commits by itself).
//!
//! A `failed` row is written first and the count of statements done after
//! each one, so a crash leaves a row that says where it stopped.

use super::connection::Conn;
use super::history::{Entry, RowState, Table, Took};
use super::statements;
use crate::error::{Spot, server_message};
use crate::{Error, Migration};
use std::time::Instant;

/// Apply `m` statement by statement, each outside any transaction, with the
/// count of statements done recorded after each.
pub(crate) async fn apply(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    // VACUUM (SQLite) and CREATE INDEX CONCURRENTLY (PostgreSQL) need no transaction around them.
    table.sql.suspend(conn).await?;
    let started = Instant::now();
    let result = async {
        let entry = Entry::of(m, applied_by);
        conn.execute(table.insert_sql(&entry, RowState::Failed, Took::Ms(0)))
            .await
            .map_err(Error::db(format!("cannot record migration {}", m.version())))?;
        for (done, statement) in table.sql.statements(m.up_sql()).iter().enumerate() {
            if let Err(error) = conn.script((*statement).to_owned()).await {
                table.record_error(conn, m.version(), &server_message(&error)).await;
                let mut spot = statements::spot(m.up_sql(), done, statement, table.sql.syntax());
                spot.statement = progress(conn, table, m.version()).await;
                return Err(Error::failed(m, spot, false)(error));
            }
            conn.execute(table.progress_sql(m.version(), done + 1))
                .await
                .map_err(Error::db("cannot record a migration's progress"))?;
        }
        let sql = table.applied_sql(m.version(), Took::since(started));
        conn.execute(sql)
            .await
            .map(drop)
            .map_err(Error::db("cannot record a migration as applied"))
    }
    .await;
    table.sql.resume(conn).await?;
    result
}

/// Run `m`'s down SQL statement by statement, then remove its history row.
pub(crate) async fn revert(conn: &mut Conn<'_>, table: &Table, m: &Migration) -> Result<(), Error> {
    table.sql.suspend(conn).await?;
    let mut result = Ok(());
    let down = m.down_sql().unwrap_or_default();
    for (index, statement) in table.sql.statements(down).into_iter().enumerate() {
        if let Err(error) = conn.script(statement.to_owned()).await {
            let spot = statements::spot(down, index, statement, table.sql.syntax());
            result = Err(Error::undo_failed(m, spot)(error));
            break;
        }
    }
    if result.is_ok() {
        result = conn
            .execute(table.delete_sql(m.version()))
            .await
            .map(drop)
            .map_err(Error::undo_failed(m, Spot::default()));
    }
    table.sql.resume(conn).await?;
    result
}

/// The `failed_statement` count of a version's row, as this session sees it.
async fn progress(conn: &mut Conn<'_>, table: &Table, version: i64) -> Option<i64> {
    let sql = format!(
        "SELECT failed_statement FROM {} WHERE version = {version}",
        table.name
    );
    let cell = conn
        .fetch_one(sql, super::connection::Ty::OptI64)
        .await
        .ok()??;
    cell.i64()
}
