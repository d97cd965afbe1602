//! How a MySQL migration's text is cut into the units the server runs,
//! without changing a character of any statement:
//!
//! - a file with `DELIMITER` lines is cut as the mysql client cuts it: at
//!   each occurrence of the current delimiter outside quotes and comments,
//!   the `DELIMITER` lines themselves never sent;
//! - a file without compound statements (no routine, trigger or event
//!   bodies, no `BEGIN … END`, `IF … END IF`, loops or labels) is cut at
//!   every `;` outside quotes and comments, which is where the server ends
//!   its statements;
//! - any other file is one unit, and the server finds its statements itself.
//!
//! stowage's own statements go only between units.

use super::MySql;
use crate::dialect::SqlDialect;
use crate::engine::statements::{Syntax, is_blank, line_of, skip_opaque, split_plain};

/// A piece of a migration the server runs as one call: one statement, or
/// several it separates itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unit<'a> {
    /// The text, a slice of the migration's, trimmed.
    pub(crate) text: &'a str,
    /// The line of the migration's file it starts on, from 1.
    pub(crate) line: usize,
    /// Whether it is exactly one statement.
    pub(crate) single: bool,
}

fn syntax() -> Syntax {
    MySql.syntax()
}

/// The units of a migration, in order.
pub(crate) fn units(sql: &str) -> Vec<Unit<'_>> {
    if let Some(units) = delimited(sql) {
        return units;
    }
    if has_compound_statement(sql) {
        let text = sql.trim();
        return if is_blank(text, syntax()) {
            Vec::new()
        } else {
            vec![Unit {
                text,
                line: line_of(sql, text),
                single: false,
            }]
        };
    }
    split_plain(sql, syntax())
        .into_iter()
        .map(|text| Unit {
            text,
            line: line_of(sql, text),
            single: true,
        })
        .collect()
}

/// The units of a file that uses `DELIMITER`, as the mysql client sends
/// them; `None` when it has no `DELIMITER` line.
fn delimited<'a>(sql: &'a str) -> Option<Vec<Unit<'a>>> {
    let bytes = sql.as_bytes();
    let mut delimiter = ";";
    let mut units = Vec::new();
    let mut found = false;
    let mut start = 0;
    let mut i = 0;
    let push = |from: usize, to: usize, delimiter: &str, units: &mut Vec<Unit<'a>>| {
        let text = sql[from..to].trim();
        if !is_blank(text, syntax()) {
            units.push(Unit {
                text,
                line: line_of(sql, text),
                // Under `;`, the client sends one statement at a time.
                single: delimiter == ";",
            });
        }
    };
    while i < sql.len() {
        // A command line only where no statement is pending, as the client reads it.
        if (i == 0 || bytes[i - 1] == b'\n') && is_blank(&sql[start..i], syntax()) {
            let line_end = sql[i..].find('\n').map_or(sql.len(), |n| i + n);
            if let Some(new) = delimiter_command(&sql[i..line_end]) {
                push(start, i, delimiter, &mut units);
                found = true;
                delimiter = new;
                i = (line_end + 1).min(sql.len());
                start = i;
                continue;
            }
        }
        if let Some(end) = skip_opaque(sql, i, syntax()) {
            i = end;
        } else if bytes[i..].starts_with(delimiter.as_bytes()) {
            push(start, i, delimiter, &mut units);
            i += delimiter.len();
            start = i;
        } else {
            i += 1;
        }
    }
    push(start, sql.len(), delimiter, &mut units);
    found.then_some(units)
}

/// The new delimiter, when `line` is a mysql client `DELIMITER` command.
fn delimiter_command(line: &str) -> Option<&str> {
    let line = line.trim();
    let (word, rest) = line.split_at(line.find(char::is_whitespace)?);
    word.eq_ignore_ascii_case("delimiter")
        .then(|| rest.split_whitespace().next())
        .flatten()
}

/// Whether any statement of `sql` holds (or is) a compound statement, whose
/// inner `;` do not end it. Errs on the side of yes: a yes only makes the
/// whole file one unit.
fn has_compound_statement(sql: &str) -> bool {
    split_plain(sql, syntax()).into_iter().any(|statement| {
        // Enough words for any routine header's `CREATE [OR REPLACE]
        // [DEFINER = user@host] [AGGREGATE] PROCEDURE`.
        let (words, labelled) = leading_words(statement, 32);
        let first = words.first().map(String::as_str).unwrap_or_default();
        let routine = words
            .iter()
            .any(|w| matches!(w.as_str(), "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT"));
        labelled
            || (matches!(first, "CREATE" | "ALTER") && routine)
            || (first == "BEGIN" && words.get(1).is_some_and(|w| w != "WORK"))
            || matches!(
                first,
                "IF" | "CASE"
                    | "LOOP"
                    | "WHILE"
                    | "REPEAT"
                    | "FOR"
                    | "DECLARE"
                    | "ELSE"
                    | "ELSEIF"
                    | "END"
                    | "UNTIL"
                    | "WHEN"
                    | "LEAVE"
                    | "ITERATE"
                    | "RETURN"
            )
    })
}

/// The first `n` words of a statement, upper-cased, outside quotes and
/// comments; and whether the first is a label (`name:`).
pub(crate) fn leading_words(statement: &str, n: usize) -> (Vec<String>, bool) {
    let bytes = statement.as_bytes();
    let mut words = Vec::new();
    let mut labelled = false;
    let mut i = 0;
    while i < bytes.len() && words.len() < n {
        if let Some(end) = skip_opaque(statement, i, syntax()) {
            i = end;
            continue;
        }
        let b = bytes[i];
        if b.is_ascii_alphabetic() || b == b'_' {
            let end = bytes[i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$'))
                .map_or(bytes.len(), |n| i + n);
            words.push(statement[i..end].to_ascii_uppercase());
            let rest = statement[end..].trim_start();
            if words.len() == 1 && rest.starts_with(':') && !rest.starts_with(":=") {
                labelled = true;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    (words, labelled)
}

#[cfg(test)]
mod tests {
    use super::{Unit, units};

    fn texts(sql: &str) -> Vec<&str> {
        units(sql).iter().map(|u| u.text).collect()
    }

    #[test]
    fn plain_statements_are_cut_at_each_semicolon() {
        let sql = "CREATE TABLE t (a INT);\n-- note\nINSERT INTO t VALUES (1), (2--1);\n# c;\nSELECT 'x;y'";
        assert_eq!(
            texts(sql),
            [
                "CREATE TABLE t (a INT)",
                "-- note\nINSERT INTO t VALUES (1), (2--1)",
                "# c;\nSELECT 'x;y'"
            ]
        );
        assert_eq!(units(sql)[1].line, 2);
        assert!(units(sql).iter().all(|u| u.single));
    }

    #[test]
    fn a_file_with_a_routine_is_one_unit() {
        let sql = "CREATE TABLE t (a INT);\nCREATE PROCEDURE p() BEGIN IF (1>0) THEN INSERT INTO t VALUES (1); END IF; END;\n";
        assert_eq!(
            units(sql),
            [Unit {
                text: sql.trim(),
                line: 1,
                single: false
            }]
        );
        for compound in [
            "BEGIN NOT ATOMIC SELECT 1; END",
            "l1: LOOP LEAVE l1; END LOOP",
            "IF 1 THEN SELECT 1; END IF",
        ] {
            assert_eq!(units(compound).len(), 1, "{compound}");
        }
        assert_eq!(units("BEGIN; SELECT 1; COMMIT").len(), 3);
        assert_eq!(units("SET @a := 1; SELECT @a").len(), 2);
    }

    #[test]
    fn delimiter_lines_cut_as_the_client_does() {
        let sql = "DROP PROCEDURE IF EXISTS p;\nDELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND//\ndelimiter ;\nCALL p();\n";
        let units = units(sql);
        assert_eq!(
            units.iter().map(|u| u.text).collect::<Vec<_>>(),
            [
                "DROP PROCEDURE IF EXISTS p",
                "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND",
                "CALL p()"
            ]
        );
        assert_eq!(
            units.iter().map(|u| u.line).collect::<Vec<_>>(),
            [1, 3, 8]
        );
        assert_eq!(
            texts("DELIMITER $$\nSELECT '$$'$$\nSELECT 2 $$"),
            ["SELECT '$$'", "SELECT 2"]
        );
    }
}
