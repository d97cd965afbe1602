//! One function per subcommand: what it does once connected (`show` and
//! `new` need no database), as an [`Outcome`] and, where it read one, the
//! status after it (for `--json`).

use super::output::{Outcome, joined, listed, planned, plural};
use super::ready::{readiness, wait_for_head};
use super::{EXIT_DRIFT, EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE};
use crate::{Error, Migrator, RepairAction, Target};

/// What a subcommand did, and the status it read.
pub(super) type Done = Result<(Outcome, Option<crate::Status>), Error>;

/// `up`: apply what is pending, all or up to `to`. Refused on a database
/// built some other way, it names the version whose schema that database
/// has, when one does (built on `server`, or `STOWAGE_DEV_URL`).
pub(super) async fn up(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    to: Option<i64>,
    server: &str,
) -> Done {
    let report = match to {
        Some(version) => migrator.run_to(pool, version).await,
        None => migrator.run(pool).await,
    };
    let report = match report {
        Err(Error::ExistingSchema {
            objects,
            matching: None,
        }) => {
            let dev = std::env::var("STOWAGE_DEV_URL").ok();
            let server = dev.as_deref().unwrap_or(server);
            let matching = migrator
                .matching_versions(pool, server)
                .await
                .ok()
                .flatten()
                .map(|versions| *versions.end());
            return Err(Error::ExistingSchema { objects, matching });
        }
        report => report?,
    };
    let outcome =
        Outcome::new(EXIT_OK, report.to_string()).with("applied", listed(report.applied()));
    Ok((outcome, None))
}

/// `down`: revert to `target` with `yes`; without it, the plan and a
/// refusal.
pub(super) async fn down(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    target: Target,
    yes: bool,
) -> Done {
    if yes {
        let report = migrator.undo(pool, target).await?;
        let outcome =
            Outcome::new(EXIT_OK, report.to_string()).with("reverted", listed(report.reverted()));
        return Ok((outcome, None));
    }
    let plan = migrator.plan(pool, target).await?;
    let n = plan.steps.len();
    let refused = format!(
        "nothing changed: `down` reverts {n} migration{} as above; run it again with --yes",
        plural(n)
    );
    let outcome = Outcome::new(EXIT_USAGE, plan.to_string())
        .then_say(refused.clone())
        .with("error", refused)
        .with("plan", planned(&plan));
    Ok((outcome, None))
}

/// `status`: every migration and its state.
pub(super) async fn status(migrator: &Migrator, pool: &sqlx::AnyPool) -> Done {
    let status = migrator.status(pool).await?;
    Ok((Outcome::new(EXIT_OK, status.to_string()), Some(status)))
}

/// `stamp`: record migrations as applied up to `target`; one that would
/// remove history rows only with `yes`.
pub(super) async fn stamp(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    target: Target,
    yes: bool,
) -> Done {
    let above = match target {
        Target::Version(v) => Some(v),
        Target::Base => Some(0),
        _ => None,
    };
    let status = match (above, yes) {
        (Some(_), false) => Some(migrator.status(pool).await?),
        _ => None,
    };
    let removed: Vec<i64> = status
        .iter()
        .flat_map(|status| &status.migrations)
        .filter(|m| !m.repeatable && above.is_some_and(|above| m.version > above))
        .filter(|m| m.state != crate::MigrationState::Pending)
        .map(|m| m.version)
        .collect();
    if !removed.is_empty() {
        let refused = format!(
            "nothing changed: this stamp removes the history rows of {} migration{} ({}) \
             without reverting their SQL; run it again with --yes",
            removed.len(),
            plural(removed.len()),
            joined(&removed)
        );
        eprintln!("{refused}");
        return Ok((Outcome::failed(EXIT_USAGE, refused), status));
    }
    let report = migrator.stamp(pool, target).await?;
    let at = report
        .head()
        .map_or_else(|| "base".to_owned(), |v| format!("version {v}"));
    let (stamped, removed) = (report.applied().len(), report.unrecorded());
    let mut said = format!(
        "stamped {stamped} migration{} as applied without running them",
        plural(stamped)
    );
    if !removed.is_empty() {
        let versions: Vec<i64> = removed.iter().map(|r| r.version).collect();
        said = format!(
            "{said}, and removed the history rows of {} migration{} above {at} ({}) without \
             reverting their SQL",
            removed.len(),
            plural(removed.len()),
            joined(&versions)
        );
    }
    let outcome = Outcome::new(EXIT_OK, format!("{said}; now at {at}"))
        .with("stamped", listed(report.applied()))
        .with("removed", listed(removed));
    Ok((outcome, None))
}

/// `verify`: the history against the binary, read-only.
pub(super) async fn verify(migrator: &Migrator, pool: &sqlx::AnyPool) -> Done {
    let problems = migrator.verify(pool).await?;
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let outcome = if problems.is_empty() {
        Outcome::new(EXIT_OK, "ok: the history matches the binary")
    } else {
        eprintln!("{} problem{} found", problems.len(), plural(problems.len()));
        let said: Vec<String> = texts.iter().map(|p| format!("problem: {p}")).collect();
        Outcome::new(EXIT_PROBLEMS, said.join("\n"))
    };
    Ok((outcome.with("problems", texts), None))
}

/// `check`: whether the database is at this binary's head, as an exit code.
pub(super) async fn check(migrator: &Migrator, pool: &sqlx::AnyPool) -> Done {
    let status = migrator.status(pool).await?;
    let (code, said) = readiness(migrator, &status);
    Ok((Outcome::new(code, said), Some(status)))
}

/// `wait`: until the database is at this binary's head, or `deadline`.
pub(super) async fn wait(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    deadline: std::time::Instant,
    quiet: bool,
) -> Done {
    let (code, said, status) = wait_for_head(migrator, pool, deadline, quiet).await?;
    Ok((Outcome::new(code, said), Some(status)))
}

/// `plan`: the SQL `up` (or `down`) would run.
pub(super) async fn plan(migrator: &Migrator, pool: &sqlx::AnyPool, target: Target) -> Done {
    let plan = migrator.plan(pool, target).await?;
    let outcome = Outcome::new(EXIT_OK, plan.to_string()).with("plan", planned(&plan));
    Ok((outcome, None))
}

/// `dump`: the database's schema as SQL (and its objects, for `--json`);
/// with `expected`, the schema the migrations build at its target, on its
/// server.
pub(super) async fn dump(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    expected: Option<(&str, Target)>,
) -> Done {
    let schema = match expected {
        Some((server, target)) => migrator.expected_schema(server, target).await?,
        None => migrator.dump(pool).await?,
    };
    let sql = schema.to_sql();
    let outcome = Outcome::new(EXIT_OK, sql.trim_end()).with("objects", schema.objects());
    Ok((outcome, None))
}

/// `drift`: the schema against the one the migrations build at the
/// database's version, made on `server`.
pub(super) async fn drift(migrator: &Migrator, pool: &sqlx::AnyPool, server: &str) -> Done {
    let drift = migrator.drift(pool, server).await?;
    let code = if drift.differences.is_empty() {
        EXIT_OK
    } else {
        EXIT_DRIFT
    };
    let outcome = Outcome::new(code, drift.to_string()).with("drift", &drift);
    Ok((outcome, None))
}

/// `baseline`: stamp the version whose schema the database has.
pub(super) async fn baseline(migrator: &Migrator, pool: &sqlx::AnyPool, server: &str) -> Done {
    let said = match migrator.baseline(pool, server).await? {
        Some(versions) if versions.start() == versions.end() => format!(
            "the database's schema is the one the migrations build at version {}: recorded it \
             as applied; `up` applies what follows",
            versions.end()
        ),
        Some(versions) => format!(
            "the database's schema is the one the migrations build at versions {} to {} (those \
             after {} change no schema): recorded {} as applied, the newest; if the database \
             lacks the changes of those, `stamp {} --yes` records the older one instead",
            versions.start(),
            versions.end(),
            versions.start(),
            versions.end(),
            versions.start()
        ),
        None => "the database holds no tables: nothing to record; `up` applies every migration"
            .to_owned(),
    };
    Ok((Outcome::new(EXIT_OK, said), None))
}

/// `adopt`: take over another tool's history.
pub(super) async fn adopt(migrator: &Migrator, pool: &sqlx::AnyPool, from: crate::Tool) -> Done {
    let report = migrator.adopt(pool, from).await?;
    let said = format!(
        "took over {} migration{} from {from}'s {}; now at {}",
        report.applied().len(),
        plural(report.applied().len()),
        from.history_table(),
        report
            .head()
            .map_or_else(|| "base".to_owned(), |v| format!("version {v}"))
    );
    let outcome = Outcome::new(EXIT_OK, said).with("adopted", listed(report.applied()));
    Ok((outcome, None))
}

/// `repair`: fix the history table as `action` says.
pub(super) async fn repair(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    action: RepairAction,
) -> Done {
    let changed = migrator.repair(pool, action).await?;
    let said = format!("repaired: {changed} history row{} changed", plural(changed));
    Ok((Outcome::new(EXIT_OK, said).with("changed", changed), None))
}

/// `new`: the files written, one path a line; notes on stderr.
pub(super) fn new(
    migrator: &Migrator,
    name: &str,
    reversible: bool,
    content: Option<&crate::scaffold::Content>,
) -> Outcome {
    match crate::scaffold::new_migration(migrator, name, reversible, content) {
        Ok(written) => {
            for note in &written.notes {
                eprintln!("note: {note}");
            }
            let files: Vec<String> = written
                .files
                .iter()
                .map(|path| crate::scaffold::shown(path))
                .collect();
            Outcome::new(EXIT_OK, files.join("\n"))
                .with("files", files)
                .with("notes", written.notes)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Outcome::failed(EXIT_ERROR, error)
        }
    }
}

/// Where `new` takes the desired schema from.
pub(super) enum Desired<'a> {
    /// `--from-database`: this database, `--reversible`, and how the
    /// file names it (its URL without a password).
    Database(&'a sqlx::AnyPool, bool, String),
    /// `--from-schema FILE`.
    Schema(&'a std::path::Path),
}

/// `new --from-schema FILE` and `new --from-database`: the migration from
/// the schema this binary's migrations build at its head to the desired
/// one, and its down, built in scratch databases on `server`. A database
/// made without migrations, before the first, gives its whole schema.
pub(super) async fn new_from(
    migrator: &Migrator,
    server: &str,
    from: Desired<'_>,
    name: &str,
    hints: &[String],
) -> Done {
    let mut renames = crate::Renames::new();
    for hint in hints {
        renames = renames.hint(hint)?;
    }
    let (desired, source) = match from {
        Desired::Database(pool, reversible, said) => {
            let status = migrator.status(pool).await?;
            match (status.current, status.head) {
                (None, _) if hints.is_empty() => {
                    return whole_schema(migrator, pool, name, reversible).await;
                }
                (current, head) if current != head || status.pending > 0 => {
                    let at = current.map_or_else(|| "no version".to_owned(), |v| v.to_string());
                    return Err(Error::InvalidTarget(format!(
                        "this database is at {at}, this binary's head is {}: the new migration \
                         goes after the head, so the database must be there (`migrate up`) \
                         before it is changed by hand",
                        head.map_or_else(|| "no version".to_owned(), |v| v.to_string())
                    )));
                }
                _ => (migrator.dump(pool).await?, said),
            }
        }
        Desired::Schema(file) => {
            let sql = std::fs::read_to_string(file).map_err(|error| {
                Error::InvalidTarget(format!(
                    "cannot read the schema file {}: {error}",
                    file.display()
                ))
            })?;
            let desired = migrator.schema_of(server, &sql).await?;
            (desired, format!("--from-schema {}", file.display()))
        }
    };
    let generated = migrator.generate(server, &desired, &renames).await?;
    if generated.is_empty() {
        let said = format!(
            "nothing to do: the schema of `{source}` is the one this binary's migrations build; \
             no file written"
        );
        return Ok((
            Outcome::new(EXIT_OK, said).with("files", Vec::<String>::new()),
            None,
        ));
    }
    for warning in &generated.warnings {
        eprintln!("review: {warning}");
    }
    let content = crate::scaffold::Content {
        dialect: desired.dialect(),
        up: format!(
            "-- Written by `migrate new {source}`: review it before applying.\n{}",
            generated.up
        ),
        down: Some(generated.down),
    };
    let outcome = new(migrator, name, true, Some(&content)).with("warnings", generated.warnings);
    Ok((outcome, None))
}

/// `new --from-database` on a database made without migrations: its
/// whole schema as the next migration, for `baseline` to record.
async fn whole_schema(
    migrator: &Migrator,
    pool: &sqlx::AnyPool,
    name: &str,
    reversible: bool,
) -> Done {
    let schema = migrator.dump(pool).await?;
    if schema.objects().is_empty() {
        return Err(Error::InvalidTarget(
            "this database has no schema to write: no tables, views or other objects".to_owned(),
        ));
    }
    let content = crate::scaffold::Content {
        dialect: schema.dialect(),
        up: format!(
            "-- The schema of the database this migration was written from \
             (`migrate new --from-database`).\n\n{}",
            schema.to_sql().trim_start()
        ),
        down: None,
    };
    let outcome = new(migrator, name, reversible, Some(&content));
    let outcome = match outcome.code {
        EXIT_OK => outcome.then_say(
            "note: rebuild, then run `migrate baseline` on this database: it records the new \
             migration as applied, since the database already has its schema"
                .to_owned(),
        ),
        _ => outcome,
    };
    Ok((outcome, None))
}

/// `show`: each embedded file of `version`, up then down.
pub(super) fn show(migrator: &Migrator, version: i64) -> Outcome {
    let found: Vec<(&crate::MigrationSet, &crate::Migration)> = migrator
        .sets()
        .iter()
        .filter_map(|set| set.get(version).map(|m| (set, m)))
        .collect();
    if found.is_empty() {
        let versions: Vec<i64> = migrator
            .sets()
            .first()
            .map(|set| set.iter().map(crate::Migration::version).collect())
            .unwrap_or_default();
        let error = format!(
            "this binary has no migration {version}; its versions: {}",
            if versions.is_empty() {
                "none".to_owned()
            } else {
                joined(&versions)
            }
        );
        eprintln!("error: {error}");
        return Outcome::failed(EXIT_ERROR, error);
    }
    let mut said = Vec::new();
    let mut files = Vec::new();
    for (set, m) in found {
        let name = format!("{} {}", m.version(), m.description());
        let down = match m.down_sql() {
            Some(down) => format!("-- {name}: down\n{}", down.trim_end()),
            None => format!("-- {name}: no down SQL, `down` cannot revert it"),
        };
        said.push(format!(
            "-- {name}: up ({})\n{}\n\n{down}",
            m.source_path(),
            m.up_sql().trim_end()
        ));
        files.push(serde_json::json!({
            "version": m.version(),
            "description": m.description(),
            "dialect": set.dialect().map(|d| d.to_string()),
            "source_path": m.source_path(),
            "up": m.up_sql(),
            "down": m.down_sql(),
        }));
    }
    Outcome::new(EXIT_OK, said.join("\n\n")).with("migrations", files)
}
