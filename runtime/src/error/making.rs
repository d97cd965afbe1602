//! How an [`Error`] is made from the driver's, and its `Debug` form: the
//! constructors, and where in a migration's file a failure happened.

use super::{Error, read_only_reason, server_message, with_transaction_advice};

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            // A server's error: its message is in the text above, trimmed
            // to the user's SQL. Not again as sqlx has it: a PostgreSQL
            // error's text ends with the line of the server's C source, a
            // MySQL one quotes the script around the statement (stowage's
            // own SQL) with the line in that script, and both read as lines
            // of the migration.
            if let Some(db) = cause
                .downcast_ref::<sqlx::Error>()
                .and_then(sqlx::Error::as_database_error)
            {
                match db.code() {
                    Some(code) => write!(f, "\n  caused by: the database's error (code {code})")?,
                    None => write!(f, "\n  caused by: the database's error")?,
                }
                break;
            }
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl Error {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let context = context.into();
        move |source| Error::Database { context, source }
    }

    /// The error of rolling back migration `m` after it failed.
    pub(crate) fn not_rolled_back(m: &crate::Migration) -> impl FnOnce(sqlx::Error) -> Error {
        Error::db(format!("cannot roll back migration {}", m.version()))
    }

    /// [`Error::MigrationFailed`] for `m`, failing where `spot` says;
    /// `transactional` when nothing of it was left behind.
    pub(crate) fn failed(
        m: &crate::Migration,
        spot: Spot,
        transactional: bool,
    ) -> impl FnOnce(sqlx::Error) -> Error + use<> {
        let (version, source_path) = (m.version(), m.source_path().to_owned());
        move |source| match read_only_reason(&source) {
            // The first write of the run: nothing of it was applied.
            Some(reason) => Error::ReadOnly {
                reason: reason.to_owned(),
            },
            None => Error::MigrationFailed {
                version,
                source_path,
                statement: spot.statement,
                line: spot.line,
                excerpt: spot.excerpt,
                message: with_transaction_advice(
                    &source,
                    spot.message.unwrap_or_else(|| server_message(&source)),
                ),
                transactional,
                source,
            },
        }
    }

    /// [`Error::UndoFailed`] for `m`, failing where `spot` says (in its
    /// down SQL).
    pub(crate) fn undo_failed(
        m: &crate::Migration,
        spot: Spot,
    ) -> impl FnOnce(sqlx::Error) -> Error + use<> {
        let version = m.version();
        let source_path = m.down_path().unwrap_or(m.source_path()).to_owned();
        move |source| Error::UndoFailed {
            version,
            source_path,
            statement: spot.statement,
            line: spot.line,
            excerpt: spot.excerpt,
            source,
        }
    }
}

/// Where in a migration's file a failure happened, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Spot {
    /// The index (from 0) of the failing statement.
    pub(crate) statement: Option<i64>,
    /// The line (from 1) of the file.
    pub(crate) line: Option<usize>,
    /// The beginning of the failing statement.
    pub(crate) excerpt: Option<String>,
    /// The server's message, when the dialect rewords it (to point at the
    /// file rather than at stowage's script).
    pub(crate) message: Option<String>,
}

/// The first line of a statement, shortened to 80 characters.
pub(crate) fn excerpt(statement: &str) -> String {
    let line = statement.lines().next().unwrap_or_default().trim_end();
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod debug_tests {
    use super::Error;

    /// `main` returning `Result<_, Error>` prints `Debug`: the message, with
    /// its advice, and what caused it.
    #[test]
    fn debug_is_the_message() {
        let error = Error::InvalidTarget("version 42 is not one of this binary's".to_owned());
        assert_eq!(format!("{error:?}"), error.to_string());
        let boxed: Box<dyn std::error::Error> = Box::new(Error::Database {
            context: "cannot read the history table".to_owned(),
            source: sqlx::Error::PoolTimedOut,
        });
        let shown = format!("{boxed:?}");
        assert!(
            shown.starts_with(&boxed.to_string()) && shown.contains("\n  caused by: "),
            "{shown}"
        );
    }
}
