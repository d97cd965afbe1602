//! Splitting a migration script into statements, for migrations that run
//! statement by statement (`no-transaction`, and every migration on MySQL).
//!
//! It knows quotes (`'…'`, `"…"`, `` `…` ``, with MySQL's backslash escapes),
//! PostgreSQL dollar quotes (`$tag$…$tag$`), comments (`--`, `#` on MySQL,
//! `/* … */`), and `BEGIN … END` bodies of triggers and routines, whose inner
//! `;` do not end the statement.

use crate::Dialect;

/// The statements of `sql`, trimmed, without the ones that hold only comments.
pub(crate) fn split(sql: &str, dialect: Dialect) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Words of the current statement, upper-cased, outside quotes and comments.
    let mut words: Vec<String> = Vec::new();
    let mut depth = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' | b'"' | b'`' => i = skip_quoted(bytes, i, dialect),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_line(bytes, i),
            b'#' if dialect == Dialect::MySql => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
            }
            b'$' if dialect == Dialect::Postgres => i = skip_dollar_quoted(sql, i),
            b';' if depth == 0 => {
                push(&mut statements, &sql[start..i]);
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
    push(&mut statements, &sql[start..]);
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

fn push<'a>(statements: &mut Vec<&'a str>, text: &'a str) {
    let text = text.trim();
    if !split_is_blank(text) {
        statements.push(text);
    }
}

/// Whether a text holds only white space and comments.
fn split_is_blank(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_whitespace() => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_line(bytes, i),
            b'#' => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
            }
            _ => return false,
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
/// escapes, and so are backslashes in MySQL strings.
fn skip_quoted(bytes: &[u8], i: usize, dialect: Dialect) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if dialect == Dialect::MySql && quote != b'`' => j += 2,
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
    let tag_len = rest
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or(rest.len());
    let tag = &rest[..tag_len];
    if !rest[tag_len..].starts_with('$') || tag.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
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
    use super::split;
    use crate::Dialect::{MySql, Postgres, Sqlite};

    #[test]
    fn plain_statements() {
        assert_eq!(
            split("SELECT 1; SELECT 2;\n", Postgres),
            ["SELECT 1", "SELECT 2"]
        );
        assert_eq!(split("SELECT 1", Sqlite), ["SELECT 1"]);
        assert_eq!(split(" ; -- nothing\n;/* x */", MySql), Vec::<&str>::new());
    }

    #[test]
    fn quotes_and_comments() {
        let sql = "INSERT INTO t VALUES ('a;b', \"c;d\"); -- e;f\nSELECT 1 /* g; */;";
        assert_eq!(
            split(sql, Postgres),
            [
                "INSERT INTO t VALUES ('a;b', \"c;d\")",
                "-- e;f\nSELECT 1 /* g; */"
            ]
        );
        assert_eq!(
            split("SELECT 'it''s;'; SELECT 2", Sqlite),
            ["SELECT 'it''s;'", "SELECT 2"]
        );
        assert_eq!(
            split(r"SELECT 'a\';b'; SELECT `x;y`; # c;d", MySql),
            [r"SELECT 'a\';b'", "SELECT `x;y`"]
        );
    }

    #[test]
    fn dollar_quotes() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                   CREATE FUNCTION g() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\n\
                   PREPARE p AS SELECT $1::int; EXECUTE p(1);";
        let statements = split(sql, Postgres);
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
        let statements = split(sql, Sqlite);
        assert_eq!(statements.len(), 2, "{statements:#?}");
        assert!(statements[0].ends_with("END"));

        let mysql = "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT IF(1, 2, 3); END IF; WHILE 0 DO SELECT 2; END WHILE; END;\n\
                     CALL p();";
        assert_eq!(split(mysql, MySql).len(), 2, "{:#?}", split(mysql, MySql));
        // A transaction's BEGIN is not a body.
        assert_eq!(split("BEGIN; SELECT 1; COMMIT;", Postgres).len(), 3);
    }

    #[test]
    fn concurrently() {
        let sql = "-- stowage:no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x);\nCREATE INDEX CONCURRENTLY b ON t (y);\n";
        assert_eq!(split(sql, Postgres).len(), 2);
    }
}
