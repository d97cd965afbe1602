//! What a subcommand says: its [`Outcome`] as text or as the `--json`
//! object, and the lists in it.

use super::EXIT_USAGE;

/// What a subcommand did: its exit code, what it says on stdout, and the
/// fields of its own in its `--json` object.
pub(super) struct Outcome {
    pub(super) code: i32,
    pub(super) said: String,
    /// Said on stderr after `said`, which it refers to.
    pub(super) after: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Outcome {
    pub(super) fn new(code: i32, said: impl Into<String>) -> Outcome {
        Outcome {
            code,
            said: said.into(),
            after: None,
            fields: serde_json::Map::new(),
        }
    }

    pub(super) fn then_say(mut self, note: String) -> Outcome {
        self.after = Some(note);
        self
    }

    /// A command that did nothing: `error` says why, on stderr already.
    pub(super) fn failed(code: i32, error: String) -> Outcome {
        Outcome::new(code, "").with("error", error)
    }

    /// Bad usage, said on stderr now.
    pub(super) fn usage(error: impl Into<String>) -> Outcome {
        let error = error.into();
        eprintln!("error: {error}");
        Outcome::failed(EXIT_USAGE, error)
    }

    pub(super) fn with(mut self, key: &str, value: impl serde::Serialize) -> Outcome {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.fields.insert(key.to_owned(), value);
        self
    }

    /// The `--json` object: the status after the command (as `status`
    /// gives it), then `command`, `exit_code`, `message`, `error` and the
    /// command's own fields.
    pub(super) fn into_json(
        self,
        command: &str,
        status: Option<crate::Status>,
    ) -> Result<String, serde_json::Error> {
        use serde_json::Value;
        let mut object = match status.map(serde_json::to_value).transpose()? {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::from_iter([(
                "schema".to_owned(),
                Value::from(crate::Status::SCHEMA),
            )]),
        };
        object.insert("command".to_owned(), Value::from(command));
        object.insert("exit_code".to_owned(), Value::from(self.code));
        object.insert("message".to_owned(), Value::from(self.said));
        object.entry("error").or_insert(Value::Null);
        object.extend(self.fields);
        serde_json::to_string_pretty(&object)
    }
}

/// Migrations applied, reverted, stamped or taken over, for `--json`.
pub(super) fn listed(migrations: &[crate::report::Applied]) -> Vec<serde_json::Value> {
    migrations
        .iter()
        .map(|m| {
            serde_json::json!({
                "version": m.version,
                "description": m.description,
                "duration_ms": u64::try_from(m.duration.as_millis()).unwrap_or(u64::MAX),
                "repeatable": m.repeatable,
            })
        })
        .collect()
}

/// A plan's steps, for `--json`.
pub(super) fn planned(plan: &crate::Plan) -> Vec<serde_json::Value> {
    plan.steps
        .iter()
        .map(|step| {
            serde_json::json!({
                "version": step.version,
                "description": step.description,
                "direction": if plan.up { "up" } else { "down" },
                "sql": step.sql,
                "no_transaction": step.no_transaction,
            })
        })
        .collect()
}

pub(super) fn joined(versions: &[i64]) -> String {
    let texts: Vec<String> = versions.iter().map(i64::to_string).collect();
    texts.join(", ")
}

/// Write `text` and a line end on stdout. A reader that went away (`| head`)
/// ends the output, not the process with a panic.
pub(super) fn say_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// The plural ending for `n` things.
pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
