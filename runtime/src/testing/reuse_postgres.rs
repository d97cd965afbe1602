//! Handing a finished test's database to the next test, reset to its
//! template's state, instead of dropping it and copying the template again
//! (PostgreSQL 15 and later).
//!
//! What the template held is written in its comment when it is built
//! ([`Pristine`]): the row count of each table that has rows, and each
//! sequence's value. What a test changed comes from the server's statistics:
//! from version 15 a session's counts of inserted, updated and deleted rows
//! reach the shared statistics before the session leaves
//! `pg_stat_activity`, so once the test's sessions are gone, every table it
//! wrote shows a count above the one recorded when the database was last
//! reset ([`Baseline`], in the database's own comment; none for a fresh
//! copy). Then, in one transaction:
//!
//! - any count that moved on a system catalog (DDL, a temporary table, a
//!   large object), any setting made with `ALTER DATABASE`, or any count
//!   lower than recorded (statistics reset) means a fresh copy instead;
//! - the rows of each changed table written since the test got the database
//!   are deleted (all of them, for a table that was empty in the template),
//!   in one statement, so that foreign keys between them hold;
//! - changed sequences are set back;
//! - the result is checked: each table written, by the test or by the
//!   reset (a trigger), is empty or holds exactly the template's rows (as many,
//!   none written after the test began), the catalogs are untouched and every
//!   sequence is back. Anything else rolls back, and the database is dropped.
//!
//! The database is then renamed to a spare of its template, with the counts
//! after the reset as its new baseline.

use super::names::with_database;
use super::postgres::rename_when_free;
use super::server::test_error;
use crate::Error;
use sqlx::{AssertSqlSafe, Connection};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a template holds, beside its definitions: the row count of each table
/// with rows and the last value of each sequence (`None`: never used), by oid
/// (a copy keeps its template's oids).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Pristine {
    pub(super) rows: HashMap<u32, i64>,
    pub(super) sequences: HashMap<u32, Option<i64>>,
}

const PRISTINE: &str = "stowage-pristine 1";
const BASELINE: &str = "stowage-baseline 1";

impl Pristine {
    /// The comment that records it.
    pub(super) fn to_comment(&self) -> String {
        let mut rows: Vec<_> = self.rows.iter().collect();
        rows.sort();
        let mut sequences: Vec<_> = self.sequences.iter().collect();
        sequences.sort();
        let rows = rows.iter().map(|(oid, n)| format!("{oid}={n}"));
        let sequences = sequences.iter().map(|(oid, value)| match value {
            Some(value) => format!("{oid}={value}"),
            None => format!("{oid}=-"),
        });
        format!(
            "{PRISTINE}\nrows {}\nsequences {}",
            rows.collect::<Vec<_>>().join(" "),
            sequences.collect::<Vec<_>>().join(" ")
        )
    }

    /// Read a comment written by [`to_comment`](Self::to_comment).
    pub(super) fn parse(comment: &str) -> Option<Pristine> {
        let mut lines = comment.lines();
        if lines.next()? != PRISTINE {
            return None;
        }
        let rows = pairs(lines.next()?.strip_prefix("rows")?, |n| n.parse().ok())?;
        let sequences = pairs(lines.next()?.strip_prefix("sequences")?, |value| {
            if value == "-" {
                Some(None)
            } else {
                value.parse().ok().map(Some)
            }
        })?;
        Some(Pristine { rows, sequences })
    }
}

/// Each relation's count of rows written (inserted, updated, deleted) as of
/// the last reset, by oid; a missing one is 0.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Baseline(pub(super) HashMap<u32, i64>);

impl Baseline {
    pub(super) fn to_comment(&self) -> String {
        let mut counts: Vec<_> = self.0.iter().filter(|(_, n)| **n != 0).collect();
        counts.sort();
        let counts: Vec<_> = counts.iter().map(|(oid, n)| format!("{oid}={n}")).collect();
        format!("{BASELINE}\n{}", counts.join(" "))
    }

    pub(super) fn parse(comment: &str) -> Option<Baseline> {
        let mut lines = comment.lines();
        if lines.next()? != BASELINE {
            return None;
        }
        Some(Baseline(pairs(lines.next().unwrap_or(""), |n| {
            n.parse().ok()
        })?))
    }
}

/// `oid=value` pairs separated by spaces.
fn pairs<T>(text: &str, value: impl Fn(&str) -> Option<T>) -> Option<HashMap<u32, T>> {
    text.split_whitespace()
        .map(|pair| {
            let (oid, v) = pair.split_once('=')?;
            Some((oid.parse().ok()?, value(v)?))
        })
        .collect()
}

/// A comment's text as an SQL string literal.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The user's tables: not in a system schema, not temporary.
const USER_TABLES: &str = "c.relkind = 'r' AND c.relpersistence <> 't' \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// Each sequence's last value (`NULL`: never used), by oid.
const SEQUENCES: &str = "SELECT c.oid::int8, pg_sequence_last_value(c.oid) FROM pg_class c \
     WHERE c.relkind = 'S' AND c.relpersistence <> 't'";

/// What the freshly migrated template on `conn` holds, for its comment.
pub(super) async fn pristine(conn: &mut sqlx::PgConnection) -> Result<Pristine, sqlx::Error> {
    let count: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT string_agg(format('SELECT %s::int8, count(*) FROM ONLY %I.%I', c.oid, n.nspname, c.relname), \
         ' UNION ALL ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_TABLES}"
    )))
    .fetch_one(&mut *conn)
    .await?;
    let mut rows = HashMap::new();
    if let Some(count) = count {
        let counted: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(count))
            .fetch_all(&mut *conn)
            .await?;
        rows = counted
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .filter_map(|(oid, n)| Some((u32::try_from(oid).ok()?, n)))
            .collect();
    }
    Ok(Pristine {
        rows,
        sequences: sequences(conn).await?,
    })
}

async fn sequences(
    conn: &mut sqlx::PgConnection,
) -> Result<HashMap<u32, Option<i64>>, sqlx::Error> {
    let found: Vec<(i64, Option<i64>)> = sqlx::query_as(SEQUENCES).fetch_all(&mut *conn).await?;
    Ok(found
        .into_iter()
        .filter_map(|(oid, value)| Some((u32::try_from(oid).ok()?, value)))
        .collect())
}

/// The transaction horizon of a database handed to a test: every
/// transaction the test runs has a later id. As the 32-bit `xid` that
/// `xmin` is compared with.
pub(super) async fn horizon(conn: &mut sqlx::PgConnection) -> Result<String, sqlx::Error> {
    let next: String = sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        .fetch_one(conn)
        .await?;
    Ok(next
        .parse::<u64>()
        .map_or(next, |xid| (xid % (1 << 32)).to_string()))
}

/// Reset finished test database `name` (handed out at transaction horizon
/// `since`), its sessions gone, to `template`'s state and rename it `spare`;
/// `false`, with nothing changed, when it cannot be reset (then the caller
/// drops it).
pub(super) async fn reset_into(
    maintenance: &mut sqlx::PgConnection,
    server: &str,
    name: &str,
    template: &str,
    since: &str,
    spare: &str,
) -> Result<bool, Error> {
    let (pristine, baseline, settings, recent): (Option<String>, Option<String>, bool, bool) =
        sqlx::query_as(
            "SELECT (SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1), \
             (SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $2), \
             EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
                     WHERE d.datname = $2), \
             current_setting('server_version_num')::int >= 150000",
        )
        .bind(template)
        .bind(name)
        .fetch_one(&mut *maintenance)
        .await
        .map_err(test_error(
            "cannot look at a finished test database",
            server,
        ))?;
    let pristine = pristine.as_deref().and_then(Pristine::parse);
    let baseline = match baseline {
        None => Some(Baseline::default()),
        Some(comment) => Baseline::parse(&comment),
    };
    let (Some(pristine), Some(baseline)) = (pristine, baseline) else {
        return Ok(false);
    };
    if settings || !recent {
        return Ok(false);
    }
    let mut conn = sqlx::PgConnection::connect(&with_database(server, name))
        .await
        .map_err(test_error(
            "cannot connect to a finished test database",
            server,
        ))?;
    let reset = reset(&mut conn, &pristine, &baseline, since).await;
    let _ = conn.close().await;
    let Some(baseline) = reset.map_err(test_error("cannot reset a test database", server))? else {
        return Ok(false);
    };
    let comment = format!(
        "COMMENT ON DATABASE {name} IS {}",
        literal(&baseline.to_comment())
    );
    run!(&mut *maintenance, comment, "cannot record a reset", server)?;
    // Once the reset's own session has left.
    rename_when_free(
        maintenance,
        server,
        name,
        spare,
        "cannot rename a reset database",
    )
    .await?;
    Ok(true)
}

/// End the finished test's sessions on `name` (a pool still closing) and
/// wait until they are gone, and with them their unflushed statistics;
/// `false` if they are still there after 5 s.
pub(super) async fn ended(
    conn: &mut sqlx::PgConnection,
    server: &str,
    name: &str,
) -> Result<bool, Error> {
    let started = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(test_error("cannot end the test's sessions", server))?;
        if left == 0 {
            return Ok(true);
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One relation's count of rows written, from the statistics.
#[derive(Debug)]
struct Written {
    oid: i64,
    /// `schema.table`, quoted by the server.
    qualified: String,
    written: i64,
    /// A system catalog. Those shared between databases are left out, as
    /// are the planner's statistics, which `ANALYZE` writes.
    catalog: bool,
    /// A user table rows can be deleted from.
    table: bool,
}

const WRITTEN: &str = "SELECT c.oid::int8 AS oid, format('%I.%I', n.nspname, c.relname) AS qualified, \
     (pg_stat_get_tuples_inserted(c.oid) + pg_stat_get_tuples_updated(c.oid) \
      + pg_stat_get_tuples_deleted(c.oid)) AS written, \
     n.nspname IN ('pg_catalog', 'information_schema') AS catalog, \
     (c.relkind = 'r' AND c.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND n.nspname NOT LIKE 'pg\\_temp%') AS table \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'm', 'p') AND NOT c.relisshared AND n.nspname NOT LIKE 'pg\\_toast%' \
     AND c.relname NOT IN ('pg_statistic', 'pg_statistic_ext_data')";

/// The same, for the writes of the current transaction (not yet in the
/// shared statistics).
const WRITTEN_NOW: &str = "SELECT c.oid::int8, (pg_stat_get_xact_tuples_inserted(c.oid) \
     + pg_stat_get_xact_tuples_updated(c.oid) + pg_stat_get_xact_tuples_deleted(c.oid)) \
     FROM pg_class c WHERE c.relkind IN ('r', 'm', 'p')";

/// Within one transaction on the finished test's database: find what the
/// test wrote, put it back as the template had it, and check. `None` (rolled
/// back) when the database cannot be reset; else the counts it ends with.
async fn reset(
    conn: &mut sqlx::PgConnection,
    pristine: &Pristine,
    baseline: &Baseline,
    since: &str,
) -> Result<Option<Baseline>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let counting: bool = sqlx::query_scalar("SELECT current_setting('track_counts')::bool")
        .fetch_one(&mut *tx)
        .await?;
    let relations: Vec<(i64, String, i64, bool, bool)> =
        sqlx::query_as(WRITTEN).fetch_all(&mut *tx).await?;
    let relations: Vec<Written> = relations
        .into_iter()
        .map(|(oid, qualified, written, catalog, table)| Written {
            oid,
            qualified,
            written,
            catalog,
            table,
        })
        .collect();
    let mut changed = Vec::new();
    for relation in &relations {
        let oid = u32::try_from(relation.oid).unwrap_or(0);
        let before = baseline.0.get(&oid).copied().unwrap_or(0);
        if relation.written == before {
            continue;
        }
        if relation.written < before || relation.catalog || !relation.table || !counting {
            return Ok(None);
        }
        changed.push((oid, relation.qualified.as_str()));
    }
    // Every changed table in one statement: foreign keys are checked at its end.
    if !changed.is_empty() {
        let deletes: Vec<String> = changed
            .iter()
            .enumerate()
            .map(|(i, (oid, qualified))| {
                let only_new = if pristine.rows.contains_key(oid) {
                    " WHERE age(xmin) <= age($1::xid)"
                } else {
                    ""
                };
                format!("d{i} AS (DELETE FROM ONLY {qualified}{only_new})")
            })
            .collect();
        let sql = format!("WITH {} SELECT 1", deletes.join(", "));
        sqlx::query(AssertSqlSafe(sql))
            .bind(since)
            .execute(&mut *tx)
            .await?;
    }
    let now = sequences(&mut tx).await?;
    let (mut oids, mut values) = (Vec::new(), Vec::new());
    for (oid, value) in &now {
        match pristine.sequences.get(oid) {
            Some(was) if was == value => {}
            Some(was) => {
                oids.push(i64::from(*oid));
                values.push(*was);
            }
            // A sequence the template did not have.
            None => return Ok(None),
        }
    }
    if now.len() != pristine.sequences.len() {
        return Ok(None);
    }
    if !oids.is_empty() {
        sqlx::query(
            "SELECT setval(s.o::oid::regclass, coalesce(s.v, q.seqstart), s.v IS NOT NULL) \
             FROM unnest($1::int8[], $2::int8[]) AS s(o, v) JOIN pg_sequence q ON q.seqrelid = s.o::oid",
        )
        .bind(&oids)
        .bind(&values)
        .execute(&mut *tx)
        .await?;
    }
    // The check: what this transaction wrote, to which tables.
    let written_now: Vec<(i64, i64)> = sqlx::query_as(WRITTEN_NOW).fetch_all(&mut *tx).await?;
    let mut after = HashMap::new();
    for relation in &relations {
        after.insert(u32::try_from(relation.oid).unwrap_or(0), relation.written);
    }
    let mut to_check = Vec::new();
    for (oid, written) in written_now.into_iter().filter(|(_, n)| *n > 0) {
        let oid = u32::try_from(oid).unwrap_or(0);
        let Some(relation) = relations.iter().find(|r| r.oid == i64::from(oid)) else {
            return Ok(None);
        };
        if !relation.table {
            return Ok(None);
        }
        *after.entry(oid).or_insert(0) += written;
        to_check.push((oid, relation.qualified.as_str()));
    }
    for (oid, qualified) in &changed {
        if !to_check.iter().any(|(o, _)| o == oid) {
            to_check.push((*oid, qualified));
        }
    }
    if !to_check.is_empty() {
        let counts: Vec<String> = to_check
            .iter()
            .map(|(oid, qualified)| {
                format!(
                    "SELECT {oid}::int8, count(*), coalesce(bool_or(age(xmin) <= age($1::xid)), false) \
                     FROM ONLY {qualified}"
                )
            })
            .collect();
        let found: Vec<(i64, i64, bool)> =
            sqlx::query_as(AssertSqlSafe(counts.join(" UNION ALL ")))
                .bind(since)
                .fetch_all(&mut *tx)
                .await?;
        for (oid, rows, newer) in found {
            let oid = u32::try_from(oid).unwrap_or(0);
            let was = pristine.rows.get(&oid).copied().unwrap_or(0);
            if rows != was || newer {
                return Ok(None);
            }
        }
    }
    if sequences(&mut tx).await? != pristine.sequences {
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(Baseline(after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_read_back() {
        let pristine = Pristine {
            rows: HashMap::from([(16390, 3), (16400, 12)]),
            sequences: HashMap::from([(16385, Some(3)), (16386, None)]),
        };
        assert_eq!(Pristine::parse(&pristine.to_comment()), Some(pristine));
        assert_eq!(
            Pristine::parse(&Pristine::default().to_comment()),
            Some(Pristine::default())
        );
        let baseline = Baseline(HashMap::from([(1259, 4), (16390, 7)]));
        assert_eq!(Baseline::parse(&baseline.to_comment()), Some(baseline));
        assert_eq!(
            Baseline::parse(&Baseline::default().to_comment()),
            Some(Baseline::default())
        );
    }

    #[test]
    fn other_comments_are_not_read() {
        assert_eq!(Pristine::parse("the orders database"), None);
        assert_eq!(
            Pristine::parse("stowage-pristine 1\nrows 1=x\nsequences "),
            None
        );
        assert_eq!(Baseline::parse("stowage-baseline 2\n1=2"), None);
        assert_eq!(Baseline::parse(""), None);
    }
}
