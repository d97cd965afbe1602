//! Splitting a migration script into statements: for `no-transaction`
//! migrations, run statement by statement, for MySQL's units
//! (`dialect/mysql/script.rs`), and for naming the statement that failed.
//!
//! It knows quotes (`'…'`, `"…"`, `` `…` ``, with backslash escapes where the
//! dialect has them), dollar quotes (`$tag$…$tag$`), comments (`--`, `#`
//! where the dialect has them, `/* … */`), and `BEGIN … END` bodies of
//! triggers and routines, whose inner `;` do not end the statement. What
//! differs between dialects is a [`Syntax`], which each dialect gives.

use crate::error::{Spot, excerpt};

/// What a dialect's lexer must know beyond the common ground.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// A backslash escapes the next character in `'…'` and `"…"` (MySQL).
    pub(crate) backslash_escapes: bool,
    /// `#` starts a comment to the end of the line (MySQL).
    pub(crate) hash_comments: bool,
    /// `$tag$ … $tag$` quotes a string (PostgreSQL).
    pub(crate) dollar_quotes: bool,
    /// `--` starts a comment only when white space follows (MySQL, where
    /// `a--1` is `a - (-1)`).
    pub(crate) dash_comment_needs_space: bool,
    /// `E'…'` strings take backslash escapes (PostgreSQL).
    pub(crate) escape_strings: bool,
    /// `/* … */` comments nest (PostgreSQL).
    pub(crate) nested_comments: bool,
    /// For a dialect whose settings change how later strings are read:
    /// from a statement's words (upper-cased, outside quotes and
    /// comments), whether a backslash escapes in `'…'` after it; `None`
    /// when the statement leaves that as it was (PostgreSQL's
    /// `standard_conforming_strings`).
    pub(crate) escapes_after: Option<EscapesAfter>,
}

impl Syntax {
    /// Standard SQL's lexing, as SQLite's: each dialect says where it
    /// differs.
    pub(crate) const STANDARD: Syntax = Syntax {
        backslash_escapes: false,
        hash_comments: false,
        dollar_quotes: false,
        dash_comment_needs_space: false,
        escape_strings: false,
        nested_comments: false,
        escapes_after: None,
    };
}

/// See [`Syntax::escapes_after`].
pub(crate) type EscapesAfter = fn(&[String]) -> Option<bool>;

/// Where the quoted string, quoted identifier or comment that starts at
/// byte `i` ends; `None` when none starts there.
pub(crate) fn skip_opaque(sql: &str, i: usize, syntax: Syntax) -> Option<usize> {
    let bytes = sql.as_bytes();
    let next = bytes.get(i + 1).copied();
    // Whether the byte before `i` continues a word (`a$b`, `type'…'`); a
    // byte of a non-ASCII character counts as a letter. (Bytes, not
    // characters: `i` may be inside a character when nothing starts there.)
    let in_word = i > 0 && {
        let before = bytes[i - 1];
        before.is_ascii_alphanumeric() || before == b'_' || before == b'$' || !before.is_ascii()
    };
    match bytes.get(i)? {
        quote @ (b'\'' | b'"' | b'`') => Some(skip_quoted(
            bytes,
            i,
            syntax.backslash_escapes
                && (*quote == b'\'' || (*quote == b'"' && !syntax.escape_strings)),
        )),
        b'E' | b'e' if syntax.escape_strings && next == Some(b'\'') && !in_word => {
            Some(skip_quoted(bytes, i + 1, true))
        }
        b'-' if next == Some(b'-')
            && (!syntax.dash_comment_needs_space
                || bytes.get(i + 2).is_none_or(|b| b.is_ascii_whitespace() || b.is_ascii_control())) =>
        {
            Some(skip_line(bytes, i))
        }
        b'#' if syntax.hash_comments => Some(skip_line(bytes, i)),
        b'/' if next == Some(b'*') => Some(skip_block_comment(sql, i, syntax.nested_comments)),
        b'$' if syntax.dollar_quotes && !in_word => {
            let end = skip_dollar_quoted(sql, i);
            (end > i + 1).then_some(end)
        }
        _ => None,
    }
}

/// Skip the `/* … */` comment starting at `i`, counting nested ones where
/// they nest.
fn skip_block_comment(sql: &str, i: usize, nested: bool) -> usize {
    let bytes = sql.as_bytes();
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < bytes.len() {
        match (bytes[j], bytes[j + 1]) {
            (b'/', b'*') if depth == 0 || nested => {
                depth += 1;
                j += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return j;
                }
            }
            _ => j += 1,
        }
    }
    bytes.len()
}

/// The statements of `sql` split at every `;` outside quotes and comments,
/// trimmed, without the ones that hold only comments: the server's own
/// boundaries for a script without compound statements.
pub(crate) fn split_plain(sql: &str, syntax: Syntax) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < sql.len() {
        if let Some(end) = skip_opaque(sql, i, syntax) {
            i = end;
        } else if sql.as_bytes()[i] == b';' {
            push(&mut statements, &sql[start..i], syntax);
            i += 1;
            start = i;
        } else {
            i += 1;
        }
    }
    push(&mut statements, &sql[start..], syntax);
    statements
}

/// Whether a script needs a `;` after it before another statement can
/// follow: something other than comments and white space comes after its
/// last `;` outside quotes and comments.
pub(crate) fn needs_terminator(sql: &str, syntax: Syntax) -> bool {
    let mut after_last = 0;
    let mut i = 0;
    while i < sql.len() {
        if let Some(end) = skip_opaque(sql, i, syntax) {
            i = end;
        } else {
            if sql.as_bytes()[i] == b';' {
                after_last = i + 1;
            }
            i += 1;
        }
    }
    !is_blank(&sql[after_last..], syntax)
}

/// `statement` from its first character of code on: past the white space
/// and comments before it.
pub(crate) fn code_of(statement: &str, syntax: Syntax) -> &str {
    let mut i = 0;
    loop {
        while statement.as_bytes().get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match skip_opaque(statement, i, syntax) {
            Some(end) if is_blank(&statement[i..end], syntax) => i = end,
            _ => return &statement[i.min(statement.len())..],
        }
    }
}

/// Where statement `index` of `sql` (`statement`, a slice of it) is: the
/// line its code starts on and its first line.
pub(crate) fn spot(sql: &str, index: usize, statement: &str, syntax: Syntax) -> Spot {
    let code = code_of(statement, syntax);
    Spot {
        statement: i64::try_from(index).ok(),
        line: Some(line_of(sql, code)),
        excerpt: Some(excerpt(code)),
        message: None,
    }
}

/// The line (from 1) of `sql` on which `part`, a slice of it, starts.
pub(crate) fn line_of(sql: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize).saturating_sub(sql.as_ptr() as usize);
    sql.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The statements of `sql`, trimmed, without the ones that hold only comments.
pub(crate) fn split(sql: &str, syntax: Syntax) -> Vec<&str> {
    cut(sql, syntax, false)
}

/// [`split`], for statements sent one at a time: a server may parse each
/// under the settings the ones before made ([`Syntax::escapes_after`]). (A script sent whole is parsed
/// whole, under the settings it started with: use [`split`] for it.)
pub(crate) fn split_one_by_one(sql: &str, syntax: Syntax) -> Vec<&str> {
    cut(sql, syntax, true)
}

fn cut(sql: &str, syntax: Syntax, follow_settings: bool) -> Vec<&str> {
    let mut syntax = syntax;
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Words of the current statement, upper-cased, outside quotes and comments.
    let mut words: Vec<String> = Vec::new();
    let mut depth = 0usize;
    while i < bytes.len() {
        if let Some(end) = skip_opaque(sql, i, syntax) {
            i = end;
            continue;
        }
        let b = bytes[i];
        match b {
            b';' if depth == 0 => {
                if follow_settings
                    && let Some(escapes_after) = syntax.escapes_after
                    && let Some(escapes) = escapes_after(&words)
                {
                    syntax.backslash_escapes = escapes;
                }
                push(&mut statements, &sql[start..i], syntax);
                i += 1;
                start = i;
                words.clear();
            }
            _ if b.is_ascii_alphabetic() || b == b'_' => {
                let end = bytes[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$'))
                    .map_or(bytes.len(), |n| i + n);
                let word = sql[i..end].to_ascii_uppercase();
                // MySQL's `IF(a, b, c)` is a function, not a block.
                let call = word == "IF" && sql[end..].trim_start().starts_with('(');
                if !call {
                    depth = next_depth(depth, &words, &word);
                }
                words.push(word);
                i = end;
            }
            _ => i += 1,
        }
    }
    push(&mut statements, &sql[start..], syntax);
    statements
}

/// Track `BEGIN … END` nesting inside `CREATE TRIGGER / PROCEDURE / FUNCTION
/// / EVENT` statements; `CASE`, `IF`, `LOOP`, `WHILE` and `REPEAT` inside a
/// body close with an `END` too.
fn next_depth(depth: usize, words: &[String], word: &str) -> usize {
    let routine = words.first().is_some_and(|w| w == "CREATE")
        && words
            .iter()
            .any(|w| matches!(w.as_str(), "TRIGGER" | "PROCEDURE" | "FUNCTION" | "EVENT"));
    let previous = words.last().map(String::as_str);
    match word {
        "BEGIN" if routine => depth + 1,
        "CASE" => depth + 1,
        "IF" | "LOOP" | "WHILE" | "REPEAT" if depth > 0 && previous != Some("END") => depth + 1,
        "END" if depth > 0 => depth - 1,
        _ => depth,
    }
}

fn push<'a>(statements: &mut Vec<&'a str>, text: &'a str, syntax: Syntax) {
    let text = text.trim();
    if !is_blank(text, syntax) {
        statements.push(text);
    }
}

/// Whether a text holds only white space and comments (a MySQL `/*! … */`
/// is code the server runs, not a comment).
pub(crate) fn is_blank(text: &str, syntax: Syntax) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_whitespace() => i += 1,
            b'\'' | b'"' | b'`' | b'$' => return false,
            b'/' if syntax.hash_comments && text[i..].starts_with("/*!") => return false,
            _ => match skip_opaque(text, i, syntax) {
                Some(end) => i = end,
                None => return false,
            },
        }
    }
    true
}

fn skip_line(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| i + n + 1)
}

/// Skip a quoted string or identifier starting at `i`; doubled quotes are
/// escapes, and so are backslashes in strings where the syntax says so.
fn skip_quoted(bytes: &[u8], i: usize, backslash_escapes: bool) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if backslash_escapes => j += 2,
            b if b == quote && bytes.get(j + 1) == Some(&quote) => j += 2,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// Skip `$tag$ … $tag$` starting at `i`, or just the `$` when it opens none
/// (a positional parameter such as `$1`).
fn skip_dollar_quoted(sql: &str, i: usize) -> usize {
    let rest = &sql[i + 1..];
    // A tag is a name: letters (any script), digits and `_`, not first a digit.
    let tag_len = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(at, _)| at);
    let tag = &rest[..tag_len];
    if !rest[tag_len..].starts_with('$') || tag.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return i + 1;
    }
    let delimiter = &sql[i..i + tag_len + 2];
    let body = i + delimiter.len();
    sql[body..]
        .find(delimiter)
        .map_or(sql.len(), |end| body + end + delimiter.len())
}

#[cfg(test)]
mod tests {
    use super::{Syntax, split};
    use crate::Dialect;

    fn syntax(dialect: Dialect) -> Syntax {
        crate::dialect::of(dialect).unwrap().syntax()
    }

    #[test]
    fn plain_statements() {
        assert_eq!(
            split("SELECT 1; SELECT 2;\n", syntax(Dialect::Postgres)),
            ["SELECT 1", "SELECT 2"]
        );
        assert_eq!(split("SELECT 1", syntax(Dialect::Sqlite)), ["SELECT 1"]);
        assert_eq!(split(" ; -- nothing\n;/* x */", syntax(Dialect::MySql)), Vec::<&str>::new());
    }

    #[test]
    fn quotes_and_comments() {
        let sql = "INSERT INTO t VALUES ('a;b', \"c;d\"); -- e;f\nSELECT 1 /* g; */;";
        assert_eq!(
            split(sql, syntax(Dialect::Postgres)),
            [
                "INSERT INTO t VALUES ('a;b', \"c;d\")",
                "-- e;f\nSELECT 1 /* g; */"
            ]
        );
        assert_eq!(
            split("SELECT 'it''s;'; SELECT 2", syntax(Dialect::Sqlite)),
            ["SELECT 'it''s;'", "SELECT 2"]
        );
        assert_eq!(
            split(r"SELECT 'a\';b'; SELECT `x;y`; # c;d", syntax(Dialect::MySql)),
            [r"SELECT 'a\';b'", "SELECT `x;y`"]
        );
    }

    #[test]
    fn dollar_quotes() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                   CREATE FUNCTION g() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\n\
                   PREPARE p AS SELECT $1::int; EXECUTE p(1);";
        let statements = split(sql, syntax(Dialect::Postgres));
        assert_eq!(statements.len(), 4, "{statements:#?}");
        assert!(statements[1].ends_with("LANGUAGE plpgsql"));
    }

    #[test]
    fn trigger_bodies() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW BEGIN\n\
                     UPDATE b SET n = n + 1;\n\
                     UPDATE c SET m = CASE WHEN 1 THEN 2 ELSE 3 END;\n\
                   END;\n\
                   INSERT INTO a VALUES (1);";
        let statements = split(sql, syntax(Dialect::Sqlite));
        assert_eq!(statements.len(), 2, "{statements:#?}");
        assert!(statements[0].ends_with("END"));

        let mysql = "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT IF(1, 2, 3); END IF; WHILE 0 DO SELECT 2; END WHILE; END;\n\
                     CALL p();";
        assert_eq!(split(mysql, syntax(Dialect::MySql)).len(), 2, "{:#?}", split(mysql, syntax(Dialect::MySql)));
        // A transaction's BEGIN is not a body.
        assert_eq!(split("BEGIN; SELECT 1; COMMIT;", syntax(Dialect::Postgres)).len(), 3);
    }

    #[test]
    fn standard_conforming_strings_off_changes_the_strings_after_it() {
        let sql = "SET standard_conforming_strings = off;\nINSERT INTO t VALUES ('it\\'s; one');\n\
                   SET standard_conforming_strings TO on;\nINSERT INTO t VALUES ('a\\'); SELECT 2;";
        assert_eq!(
            super::split_one_by_one(sql, syntax(Dialect::Postgres)),
            [
                "SET standard_conforming_strings = off",
                "INSERT INTO t VALUES ('it\\'s; one')",
                "SET standard_conforming_strings TO on",
                "INSERT INTO t VALUES ('a\\')",
                "SELECT 2"
            ]
        );
    }

    #[test]
    fn concurrently() {
        let sql = "-- stowage:no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x);\nCREATE INDEX CONCURRENTLY b ON t (y);\n";
        assert_eq!(split(sql, syntax(Dialect::Postgres)).len(), 2);
    }
}
