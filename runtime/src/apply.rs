//! [`Migrator::run`]: bring a database up to date.

use crate::conn::{Conn, Database, Value};
use crate::error::short_hex;
use crate::history::{self, HistoryRow, RowState, Table};
use crate::split::split;
use crate::{Dialect, Error, Migration, MigrationSet, Migrator, Policy, Report, lock};
use std::time::Instant;
use tracing::Instrument;

impl Migrator {
    /// Apply every pending migration.
    ///
    /// When the database is up to date this costs one query: the newest row
    /// of the history table, whose chain value vouches for every migration up
    /// to it. Otherwise stowage takes the migration lock (so that replicas
    /// starting together apply each migration once), checks the history
    /// against the binary, and applies what is pending, each migration with
    /// its history row in one transaction where the database allows it.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::SqlitePool) -> Result<(), stowage::Error> {
    /// static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../migrations");
    ///
    /// let report = MIGRATOR.run(&pool).await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// When the database and the binary disagree ([`Error::ChecksumMismatch`],
    /// [`Error::UnknownVersion`], [`Error::OutOfOrder`], [`Error::FailedMigration`]),
    /// when a migration fails ([`Error::MigrationFailed`]), when another
    /// process holds the lock too long ([`Error::LockTimeout`]), and when the
    /// database cannot be reached ([`Error::Database`]).
    pub async fn run<'a>(&self, db: impl Database<'a>) -> Result<Report, Error> {
        self.run_to_inner(db, None).await
    }

    /// Apply the pending migrations up to and including `version`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_to<'a>(&self, db: impl Database<'a>, version: i64) -> Result<Report, Error> {
        self.run_to_inner(db, Some(version)).await
    }

    async fn run_to_inner<'a>(
        &self,
        db: impl Database<'a>,
        up_to: Option<i64>,
    ) -> Result<Report, Error> {
        let mut conn = db
            .connect()
            .await
            .map_err(Error::db("cannot connect to the database"))?;
        let dialect = conn.dialect();
        let span = tracing::info_span!("stowage.run", %dialect);
        async move {
            let set = self
                .set(dialect)
                .ok_or(Error::NoMigrationsForDialect { dialect })?;
            let table = Table::new(self.config(), dialect)?;
            if up_to_date(&mut conn, &table, set).await? {
                tracing::debug!(head = set.head().map(|h| h.version), "database up to date");
                return Ok(Report::new(
                    dialect,
                    Vec::new(),
                    set.head().map(|h| h.version),
                ));
            }
            let mut conn = lock(conn, &table, self.config().lock_timeout).await?;
            let result = apply_pending(self, &mut conn, &table, set, up_to).await;
            unlock(conn, &table, result).await
        }
        .instrument(span)
        .await
    }
}

/// The fast path: one query, no lock, no DDL.
async fn up_to_date(conn: &mut Conn<'_>, table: &Table, set: &MigrationSet) -> Result<bool, Error> {
    match conn
        .fetch(table.head_sql(), Vec::new(), &Table::HEAD_TYPES)
        .await
    {
        Ok(rows) => {
            let Some(row) = rows.first() else {
                return Ok(set.is_empty());
            };
            let head = set.head();
            Ok(head.is_some_and(|head| {
                row.first().and_then(|c| c.i64()) == Some(head.version)
                    && row.get(1).map(|c| c.bytes()) == Some(&head.chain[..])
                    && row.get(2).and_then(|c| c.text()) == Some("applied")
            }))
        }
        Err(error) if history::is_undefined_table(&error) => Ok(set.is_empty()),
        Err(error) => Err(Error::db(format!(
            "cannot read the history table {}",
            table.name
        ))(error)),
    }
}

/// Take the migration lock on the connection; on failure it is closed.
pub(crate) async fn lock<'a>(
    mut conn: Conn<'a>,
    table: &Table,
    timeout: std::time::Duration,
) -> Result<Conn<'a>, Error> {
    let waiting = Instant::now();
    if let Err(error) = lock::acquire(&mut conn, table, timeout).await {
        conn.close().await;
        return Err(error);
    }
    tracing::debug!(waited = ?waiting.elapsed(), "migration lock taken");
    Ok(conn)
}

/// Release the lock after the work that gave `result`, on every path; when
/// releasing fails, the connection is closed, which releases it too.
pub(crate) async fn unlock<T>(
    mut conn: Conn<'_>,
    table: &Table,
    result: Result<T, Error>,
) -> Result<T, Error> {
    // On SQLite the lock is the run's transaction: keep the migrations that
    // succeeded (a failed one was rolled back to its savepoint already).
    let keep = matches!(
        result,
        Ok(_) | Err(Error::MigrationFailed { .. } | Error::UndoFailed { .. })
    );
    match lock::release(&mut conn, table, keep).await {
        Ok(()) => result,
        Err(release_error) => {
            conn.close().await;
            result.and(Err(release_error))
        }
    }
}

/// Compare the history with the binary: the errors that stop a run.
pub(crate) fn check_policies(
    migrator: &Migrator,
    set: &MigrationSet,
    rows: &[HistoryRow],
) -> Vec<Error> {
    let config = migrator.config();
    let mut problems = Vec::new();
    let newest_applied = rows.iter().map(|r| r.version).max();
    let recorded = history::by_version(rows);
    for row in rows {
        if row.state == RowState::Failed {
            problems.push(Error::FailedMigration {
                version: row.version,
                description: row.description.clone(),
                statement: row.failed_statement,
                error: row.error.clone(),
            });
            continue;
        }
        match set.get(row.version) {
            None => {
                let error = Error::UnknownVersion {
                    version: row.version,
                    description: row.description.clone(),
                };
                allow_or_push(config.on_missing, error, &mut problems);
            }
            Some(migration) if row.checksum != migration.checksum() => {
                let error = Error::ChecksumMismatch {
                    version: row.version,
                    source_path: migration.source_path().to_owned(),
                    applied: short_hex(&row.checksum),
                    embedded: short_hex(migration.checksum()),
                };
                allow_or_push(config.on_modified, error, &mut problems);
            }
            Some(_) => {}
        }
    }
    if let Some(newest) = newest_applied {
        for migration in set
            .iter()
            .filter(|m| m.version() < newest && !recorded.contains_key(&m.version()))
        {
            let error = Error::OutOfOrder {
                version: migration.version(),
                source_path: migration.source_path().to_owned(),
                newest_applied: newest,
            };
            allow_or_push(config.on_out_of_order, error, &mut problems);
        }
    }
    problems
}

fn allow_or_push(policy: Policy, error: Error, problems: &mut Vec<Error>) {
    match policy {
        Policy::Allow => tracing::warn!("allowed by policy: {error}"),
        _ => problems.push(error),
    }
}

/// The slow path, under the lock.
async fn apply_pending(
    migrator: &Migrator,
    conn: &mut Conn<'_>,
    table: &Table,
    set: &MigrationSet,
    up_to: Option<i64>,
) -> Result<Report, Error> {
    table.ensure(conn).await?;
    let rows = table.rows(conn).await?;
    if let Some(problem) = check_policies(migrator, set, &rows).into_iter().next() {
        return Err(problem);
    }
    let recorded = history::by_version(&rows);
    let applied_by = history::applied_by();
    let mut applied = Vec::new();
    for migration in set.iter() {
        if recorded.contains_key(&migration.version())
            || up_to.is_some_and(|v| migration.version() > v)
        {
            continue;
        }
        let started = Instant::now();
        apply_one(conn, table, migration, &applied_by)
            .instrument(tracing::info_span!(
                "stowage.migration",
                version = migration.version()
            ))
            .await?;
        let duration = started.elapsed();
        tracing::info!(
            version = migration.version(),
            description = migration.description(),
            ?duration,
            "applied migration"
        );
        applied.push(crate::report::Applied::of(migration, duration));
    }
    // Rows written under other binaries (out of order, accepted checksums)
    // carry another chain value; record this binary's so the next start-up
    // takes the fast path.
    for row in &rows {
        if let Some(migration) = set.get(row.version)
            && row.chain != migration.chain()
        {
            let sql = format!(
                "UPDATE {} SET chain = {} WHERE version = {}",
                table.name,
                table.param(1),
                table.param(2)
            );
            conn.execute(
                sql,
                vec![
                    Value::Bytes(migration.chain().to_vec()),
                    Value::I64(row.version),
                ],
            )
            .await
            .map_err(Error::db("cannot update the history table's chain"))?;
        }
    }
    let head = set
        .iter()
        .map(Migration::version)
        .filter(|v| recorded.contains_key(v) || applied.iter().any(|a| a.version == *v))
        .max();
    Ok(Report::new(table.dialect, applied, head))
}

/// Apply one migration with its history row.
async fn apply_one(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    match (table.dialect, m.no_transaction()) {
        (Dialect::Postgres, false) => apply_postgres_transaction(conn, table, m, applied_by).await,
        (Dialect::Sqlite, false) => apply_sqlite_savepoint(conn, table, m, applied_by).await,
        (Dialect::MySql, _) => apply_mysql_script(conn, table, m, applied_by).await,
        (Dialect::Postgres | Dialect::Sqlite, true) => {
            apply_stepwise(conn, table, m, applied_by).await
        }
    }
}

fn failed(
    m: &Migration,
    statement: Option<i64>,
    transactional: bool,
) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::MigrationFailed {
        version: m.version(),
        source_path: m.source_path().to_owned(),
        statement,
        transactional,
        source,
    }
}

/// PostgreSQL: SQL, history row and commit in one round trip.
async fn apply_postgres_transaction(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    let insert = format!(
        "INSERT INTO {} (version, description, checksum, chain, state, duration_ms, applied_by) VALUES \
         ({}, {}, {}, {}, 'applied', (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, {})",
        table.name,
        m.version(),
        table.text_literal(m.description()),
        table.bytes_literal(m.checksum()),
        table.bytes_literal(m.chain()),
        table.text_literal(applied_by),
    );
    let script = format!("BEGIN;\n{}\n;\n{insert};\nCOMMIT;", m.up_sql());
    if let Err(error) = conn.script(script).await {
        conn.script("ROLLBACK".to_owned())
            .await
            .map_err(Error::db(format!(
                "cannot roll back migration {}",
                m.version()
            )))?;
        return Err(failed(m, None, true)(error));
    }
    Ok(())
}

/// SQLite: inside the run's `BEGIN IMMEDIATE`, each migration in a savepoint.
async fn apply_sqlite_savepoint(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    let result = conn
        .script(format!("SAVEPOINT stowage_migration;\n{}\n;", m.up_sql()))
        .await;
    let result = match result {
        Ok(()) => {
            let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            conn.execute(
                table.insert_sql("applied", &duration.to_string()),
                history::insert_values(m, applied_by),
            )
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(_) => conn
            .script("RELEASE stowage_migration".to_owned())
            .await
            .map_err(Error::db("cannot release the migration's savepoint")),
        Err(error) => {
            conn.script("ROLLBACK TO stowage_migration; RELEASE stowage_migration;".to_owned())
                .await
                .map_err(Error::db(format!(
                    "cannot roll back migration {}",
                    m.version()
                )))?;
            Err(failed(m, None, true)(error))
        }
    }
}

/// MySQL, whose DDL commits by itself: a `failed` row first, then the
/// statements, then `applied`; all in one multi-statement round trip.
///
/// The script runs with `autocommit = 0`, so the statements between two
/// commit points commit together, and the row's count of statements done is
/// updated just before each commit point (a DDL statement, which commits
/// implicitly before and after itself, or an explicit `COMMIT` after a DDL
/// statement). A crash therefore leaves the row saying how many statements
/// are durably done; a failure names the statement from the count of results
/// the server returned before its error.
async fn apply_mysql_script(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    let statements = split(m.up_sql(), Dialect::MySql);
    let t = &table.name;
    let version = m.version();
    // Each statement of the script, and the migration statement it is (if any).
    let mut script: Vec<(String, Option<usize>)> = vec![
        ("SET autocommit = 0".to_owned(), None),
        (
            format!(
                "INSERT INTO {t} (version, description, checksum, chain, state, failed_statement, applied_by) \
                 VALUES ({version}, {}, {}, {}, 'failed', 0, {})",
                table.text_literal(m.description()),
                table.bytes_literal(m.checksum()),
                table.bytes_literal(m.chain()),
                table.text_literal(applied_by),
            ),
            None,
        ),
    ];
    let progress = |done: usize| {
        (
            format!("UPDATE {t} SET failed_statement = {done} WHERE version = {version}"),
            None,
        )
    };
    for (index, statement) in statements.iter().enumerate() {
        let ddl = commits_implicitly(statement);
        let last = index + 1 == statements.len();
        let next_ddl = statements
            .get(index + 1)
            .is_some_and(|next| commits_implicitly(next));
        script.push(((*statement).to_owned(), Some(index)));
        if first_keyword(statement) == "CALL" {
            // A procedure's result sets are counted apart: say where we are.
            let position = script.len();
            script.push((format!("SELECT '{}{position}'", crate::conn::RESYNC), None));
        }
        if !last && (ddl || next_ddl) {
            script.push(progress(index + 1));
            if ddl && !next_ddl {
                script.push(("COMMIT".to_owned(), None));
            }
        }
    }
    script.push((
        format!(
            "UPDATE {t} SET state = 'applied', failed_statement = NULL, \
             duration_ms = TIMESTAMPDIFF(MICROSECOND, applied_at, NOW(6)) DIV 1000 WHERE version = {version}"
        ),
        None,
    ));
    script.push(("COMMIT".to_owned(), None));
    script.push(("SET autocommit = 1".to_owned(), None));
    let text = script
        .iter()
        .map(|(sql, _)| sql.as_str())
        .collect::<Vec<_>>()
        .join(";\n");
    let several: Vec<bool> = script
        .iter()
        .map(|(sql, index)| index.is_some() && first_keyword(sql) == "CALL")
        .collect();
    match conn.script_counted(text, &several).await {
        Ok(()) => Ok(()),
        Err((done, error)) => {
            let statement = script.get(done).and_then(|(_, index)| *index);
            Err(mysql_failure(conn, table, m, statement, error).await)
        }
    }
}

/// The first keyword of a MySQL statement, upper-cased, past its comments.
fn first_keyword(statement: &str) -> String {
    statement
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("--") && !line.starts_with('#'))
        .and_then(|line| line.split(|c: char| c.is_whitespace() || c == '(').next())
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// Whether a MySQL statement commits the open transaction by itself.
fn commits_implicitly(statement: &str) -> bool {
    matches!(
        first_keyword(statement).as_str(),
        "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE"
    )
}

/// After a MySQL migration failed at `statement`: roll back what is not
/// durable, and record the error on the row if the row itself is durable.
async fn mysql_failure(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    statement: Option<usize>,
    error: sqlx::Error,
) -> Error {
    let _ = conn.script("ROLLBACK; SET autocommit = 1".to_owned()).await;
    let durable = table
        .rows(conn)
        .await
        .ok()
        .is_some_and(|rows| rows.iter().any(|r| r.version == m.version()));
    if durable {
        let sql = format!("UPDATE {} SET error = ? WHERE version = ?", table.name);
        let _ = conn
            .execute(
                sql,
                vec![Value::Text(error.to_string()), Value::I64(m.version())],
            )
            .await;
    }
    // Nothing durable happened when even the row was rolled back.
    let statement = statement.and_then(|s| i64::try_from(s).ok());
    failed(m, statement, !durable)(error)
}

/// The `failed_statement` count of a version's row, as this session sees it.
async fn progress(conn: &mut Conn<'_>, table: &Table, version: i64) -> Option<i64> {
    let sql = format!(
        "SELECT failed_statement FROM {} WHERE version = {version}",
        table.name
    );
    let rows = conn
        .fetch(sql, Vec::new(), &[crate::conn::Ty::OptI64])
        .await
        .ok()?;
    rows.first()?.first()?.i64()
}

/// PostgreSQL and SQLite `no-transaction` migrations: statement by statement,
/// each outside any transaction, with the count of statements done recorded
/// after each.
async fn apply_stepwise(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    applied_by: &str,
) -> Result<(), Error> {
    // VACUUM (SQLite) and CREATE INDEX CONCURRENTLY (PostgreSQL) need no transaction around them.
    lock::suspend(conn, table).await?;
    let started = Instant::now();
    let result = async {
        conn.execute(table.insert_sql("failed", "0"), history::insert_values(m, applied_by))
            .await
            .map_err(Error::db(format!("cannot record migration {}", m.version())))?;
        for (done, statement) in split(m.up_sql(), table.dialect).iter().enumerate() {
            if let Err(error) = conn.script((*statement).to_owned()).await {
                return Err(record_failure(conn, table, m, error).await);
            }
            let sql = format!(
                "UPDATE {} SET failed_statement = {} WHERE version = {}",
                table.name,
                done + 1,
                m.version()
            );
            conn.script(sql).await.map_err(Error::db("cannot record a migration's progress"))?;
        }
        let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE {} SET state = 'applied', failed_statement = NULL, duration_ms = {duration} WHERE version = {}",
            table.name,
            m.version()
        );
        conn.script(sql).await.map_err(Error::db("cannot record a migration as applied"))
    }
    .await;
    lock::resume(conn, table).await?;
    result
}

/// Record the error of a statement-by-statement migration on its failed row,
/// and turn it into [`Error::MigrationFailed`] naming the statement.
async fn record_failure(
    conn: &mut Conn<'_>,
    table: &Table,
    m: &Migration,
    error: sqlx::Error,
) -> Error {
    let message = error.to_string();
    let sql = format!(
        "UPDATE {} SET error = {} WHERE version = {}",
        table.name,
        table.param(1),
        table.param(2)
    );
    let _ = conn
        .execute(sql, vec![Value::Text(message), Value::I64(m.version())])
        .await;
    failed(m, progress(conn, table, m.version()).await, false)(error)
}
