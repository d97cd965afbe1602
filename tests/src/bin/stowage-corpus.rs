//! Real projects' migration folders, version by version, against each
//! database's own tools (`scripts/corpus` runs it on fetched folders):
//!
//! ```text
//! stowage-corpus <postgres|mysql|sqlite> [--pairs] <folder> [<folder> …]
//! ```
//!
//! With `--pairs`, the generator instead: for every two consecutive
//! versions k and k+1, `Schema::migration_to` from k's schema to k+1's,
//! its up applied by the database's own client (after the folder's
//! callbacks, as below) to a database holding k's
//! schema must build k+1's, and its down then k's again. One line per pair
//! that is not handled, with why; a count at the end.
//!
//! For each folder, on the servers of `STOWAGE_TEST_PG_URL` /
//! `STOWAGE_TEST_MYSQL_URL` (SQLite: files), at every version: stowage
//! applies the next migration to one database and the database's own
//! client applies its file to another (after the folder's `beforeMigrate`
//! and `beforeEachMigrate` callbacks, as stowage runs them); the two schemas (`Migrator::dump`)
//! must be equal. The dump, applied by the client to an empty database,
//! must give the same schema and the same native dump (`pg_dump`,
//! `mariadb-dump`, sqlite3's `.schema`). Then the middle version, built by
//! the client without history, must be found by `baseline`, and `run_to`
//! the newest version applied must build that version's schema. One line per version; the exit
//! code is 1 when any version disagrees.

use stowage::{Event, MigrationSet, Migrator, Schema};
use stowage_tests::{Backend, dir_at, fresh, native};

const OWN: &[&str] = &[
    "stowage_migrations",
    "stowage_migrations_repeatable",
    "stowage_migrations_lock",
];

fn differences(actual: &Schema, expected: &Schema) -> String {
    actual
        .diff(expected)
        .iter()
        .take(3)
        .map(|d| format!("\n    {}", d.to_string().replace('\n', "\n    ")))
        .collect()
}

/// How the client runs a migration of `set` as stowage's run of it does:
/// after the folder's `beforeMigrate` and `beforeEachMigrate` callbacks, on
/// the same session (a folder may need `SET FOREIGN_KEY_CHECKS = 0`, as its
/// application sets before migrating).
fn as_run(set: &MigrationSet) -> impl Fn(&str) -> String {
    let before: String = [Event::BeforeMigrate, Event::BeforeEachMigrate]
        .into_iter()
        .flat_map(|event| set.callbacks(event))
        .map(|callback| format!("{}\n", callback.sql()))
        .collect();
    move |sql| format!("{before}{sql}")
}

/// The problems of one folder, said as they are found.
async fn folder(backend: Backend, path: &std::path::Path) -> Result<usize, String> {
    let dir = dir_at(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let migrator = Migrator::from_dir(&dir).map_err(|e| e.to_string())?;
    let set = migrator
        .set(backend.dialect())
        .ok_or_else(|| format!("{} has no migrations for {backend:?}", path.display()))?;
    let (built, by_client) = (
        fresh(backend, "built").await,
        fresh(backend, "client").await,
    );
    let (pool, theirs_pool) = (built.pool().await, by_client.pool().await);
    let as_run = as_run(set);
    let mut problems = 0;
    let mut client_ok = true;
    let mut last: Option<Schema> = None;
    let mut applied: Vec<i64> = Vec::new();
    for migration in set.iter() {
        let version = migration.version();
        let mut said = Vec::new();
        if let Err(error) = pool.run_to(&migrator, version).await {
            println!("{version}: stowage stopped: {error}");
            problems += 1;
            break;
        }
        applied.push(version);
        let schema = pool.dump(&migrator).await;
        if client_ok {
            match native::try_client(backend, &by_client.url, &as_run(migration.up_sql())) {
                Ok(()) => {
                    let theirs = theirs_pool.dump(&migrator).await;
                    if theirs != schema {
                        said.push(format!(
                            "the client's schema is not stowage's:{}",
                            differences(&theirs, &schema)
                        ));
                    }
                }
                Err(error) => {
                    said.push(format!(
                        "the client stopped (not compared from here): {error}"
                    ));
                    client_ok = false;
                }
            }
        }
        let copy = fresh(backend, "copy").await;
        match native::try_client(backend, &copy.url, &schema.to_sql()) {
            Err(error) => said.push(format!("the dump does not apply: {error}")),
            Ok(()) => {
                let copied = copy.pool().await.dump(&migrator).await;
                if copied != schema {
                    said.push(format!(
                        "the dump recreates another schema:{}",
                        differences(&copied, &schema)
                    ));
                }
                match (
                    native::dump(backend, &built.url, OWN),
                    native::dump(backend, &copy.url, OWN),
                ) {
                    (Some(a), Some(b)) if a != b => {
                        let only: Vec<&str> =
                            a.lines().filter(|l| !b.contains(l)).take(3).collect();
                        let extra: Vec<&str> =
                            b.lines().filter(|l| !a.contains(l)).take(3).collect();
                        said.push(format!("the native dumps differ: -{only:?} +{extra:?}"));
                    }
                    _ => {}
                }
            }
        }
        last = Some(schema.clone());
        let objects = schema.objects().len();
        if said.is_empty() {
            println!("{version}: ok ({objects} objects)");
        } else {
            problems += 1;
            println!("{version}: {}", said.join("; "));
        }
    }
    // The middle version, built by the client without history: `baseline`
    // finds it (or the versions of the same schema around it) and stamps
    // it, and `run` applies the rest to the same schema as above.
    // (Among the versions stowage applied.)
    let (Some(&middle), Some(&newest)) = (applied.get(applied.len() / 2), applied.last()) else {
        return Ok(problems);
    };
    let other = fresh(backend, "baseline").await;
    let mut built_by_client = true;
    for migration in set.iter().take_while(|m| m.version() <= middle) {
        if native::try_client(backend, &other.url, &as_run(migration.up_sql())).is_err() {
            built_by_client = false;
            break;
        }
    }
    if built_by_client {
        let pool = other.pool().await;
        let server = stowage_tests::server_url(backend);
        let baselined = match pool.kind() {
            stowage_tests::Kind::Postgres(p) => migrator.baseline(p, &server).await,
            stowage_tests::Kind::MySql(p) => migrator.baseline(p, &server).await,
            stowage_tests::Kind::Sqlite(p) => migrator.baseline(p, &server).await,
        };
        match baselined {
            Ok(Some(found)) if found.contains(&middle) => {
                match pool.run_to(&migrator, newest).await {
                    Ok(_) if Some(&pool.dump(&migrator).await) == last.as_ref() => println!(
                        "baseline at {middle}: found {}..={}, stamped, and `run` built {newest}'s schema",
                        found.start(),
                        found.end()
                    ),
                    Ok(_) => {
                        problems += 1;
                        println!("baseline at {middle}: `run` after it built another schema");
                    }
                    Err(error) => {
                        problems += 1;
                        println!("baseline at {middle}: `run` after it failed: {error}");
                    }
                }
            }
            other => {
                problems += 1;
                println!("baseline at {middle}: {other:?}");
            }
        }
    } else {
        println!("baseline at {middle}: not tried, the client stopped before it");
    }
    Ok(problems)
}

/// A database with the schema `before`, of version `at`: its dump applied
/// by the client, or where the server makes another schema of that (MariaDB
/// lists a table's unique keys by their columns' nullability, not as
/// written), the migrations up to `at` applied.
async fn at_version(
    backend: Backend,
    migrator: &Migrator,
    before: &stowage::Schema,
    at: i64,
) -> Result<stowage_tests::Fresh, String> {
    let db = fresh(backend, "pair").await;
    if let Err(error) = native::try_client(backend, &db.url, &before.to_sql()) {
        return Err(format!(
            "the dump of the version before does not apply: {error}"
        ));
    }
    if db.pool().await.dump(migrator).await == *before {
        return Ok(db);
    }
    let db = fresh(backend, "pair").await;
    db.pool()
        .await
        .run_to(migrator, at)
        .await
        .map_err(|error| format!("the version before does not apply: {error}"))?;
    Ok(db)
}

/// The generator on every pair of consecutive versions of one folder: how
/// many pairs it did not handle.
async fn pairs(backend: Backend, path: &std::path::Path) -> Result<usize, String> {
    let dir = dir_at(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let migrator = Migrator::from_dir(&dir).map_err(|e| e.to_string())?;
    let set = migrator
        .set(backend.dialect())
        .ok_or_else(|| format!("{} has no migrations for {backend:?}", path.display()))?;
    let as_run = as_run(set);
    let built = fresh(backend, "pairs").await;
    let pool = built.pool().await;
    let mut schemas = vec![(0, pool.dump(&migrator).await)];
    for migration in set.iter() {
        let version = migration.version();
        if let Err(error) = pool.run_to(&migrator, version).await {
            println!("{version}: stowage stopped, the pairs end here: {error}");
            break;
        }
        schemas.push((version, pool.dump(&migrator).await));
    }
    let (mut handled, mut unchanged, mut not) = (0, 0, 0);
    for pair in schemas.windows(2) {
        let [(at, before), (version, after)] = pair else {
            continue;
        };
        let generated = before.migration_to(after);
        if generated.is_empty() {
            unchanged += 1;
            continue;
        }
        let db = at_version(backend, &migrator, before, *at).await;
        let why = match db {
            Err(error) => Some(error),
            Ok(ref db) => match native::try_client(backend, &db.url, &as_run(&generated.up)) {
                Err(error) => Some(format!("up does not apply: {error}")),
                Ok(()) => {
                    let up = db.pool().await.dump(&migrator).await;
                    if up != *after {
                        Some(format!(
                            "up builds another schema:{}",
                            differences(&up, after)
                        ))
                    } else {
                        match native::try_client(backend, &db.url, &as_run(&generated.down)) {
                            Err(error) => Some(format!("down does not apply: {error}")),
                            Ok(()) => {
                                let down = db.pool().await.dump(&migrator).await;
                                (down != *before).then(|| {
                                    format!(
                                        "down builds another schema:{}",
                                        differences(&down, before)
                                    )
                                })
                            }
                        }
                    }
                }
            },
        };
        match why {
            None => handled += 1,
            Some(why) => {
                not += 1;
                let warnings = match generated.warnings.is_empty() {
                    true => String::new(),
                    false => format!(" (warned: {})", generated.warnings.join("; ")),
                };
                println!("{version}: {why}{warnings}");
            }
        }
    }
    let changed = handled + not;
    println!(
        "pairs: {handled} of {changed} that change the schema handled fully, {not} not; \
         {unchanged} change no schema"
    );
    Ok(not)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let backend = match args.next().as_deref() {
        Some("postgres") => Backend::Postgres,
        Some("mysql") => Backend::MySql,
        Some("sqlite") => Backend::Sqlite,
        _ => {
            eprintln!(
                "usage: stowage-corpus <postgres|mysql|sqlite> [--pairs] <folder> [<folder> …]"
            );
            std::process::exit(2);
        }
    };
    let mut args = args.peekable();
    let generator = args.next_if(|arg| arg == "--pairs").is_some();
    let mut failed = false;
    for path in args {
        println!("== {path}");
        let path_ref = std::path::Path::new(&path);
        let result = match generator {
            true => pairs(backend, path_ref).await,
            false => folder(backend, path_ref).await,
        };
        match result {
            Ok(0) => println!("== {path}: every version agrees"),
            Ok(n) => {
                failed = true;
                println!("== {path}: {n} version(s) disagree");
            }
            Err(error) => {
                failed = true;
                println!("== {path}: {error}");
            }
        }
    }
    std::process::exit(i32::from(failed));
}
