//! The statements stowage cuts a script into are the statements the server
//! parses. For each script of a corpus (written here, and generated from a
//! seed), the oracle runs it whole: the server as one multi-statement call,
//! or, for a script with `DELIMITER` lines, the `mariadb` client. stowage's
//! pieces run one at a time on another database. Both must end the same:
//! the same number of results from the server, the same objects stored; and
//! every routine, trigger and function body the server keeps is a piece of
//! the script as written.
//!
//! `STOWAGE_BOUNDARY_SEED` replays one generated corpus; by default the seed
//! changes with each run and is printed, so a failure can be replayed.

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Connection};
use stowage::__private::statements;
use stowage::Dialect;
use stowage_tests::{Backend, fresh, native};

/// The number of results the server returns for `sql` sent as one call.
macro_rules! results {
    ($conn:expr, $sql:expr) => {{
        let mut stream = sqlx::raw_sql(AssertSqlSafe($sql.to_owned())).fetch_many(&mut *$conn);
        let mut n = 0usize;
        while let Some(item) = stream
            .try_next()
            .await
            .unwrap_or_else(|e| panic!("the server refused\n{}\n: {e}", $sql))
        {
            if item.is_left() {
                n += 1;
            }
        }
        n
    }};
}

/// What a database holds after a script: objects and their definitions,
/// table contents; `bodies` are the stored bodies of routines and triggers.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    objects: Vec<String>,
    bodies: Vec<String>,
}

async fn mysql_snapshot(conn: &mut sqlx::MySqlConnection) -> Snapshot {
    let objects: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(CONCAT(TABLE_NAME, '.', COLUMN_NAME, ' ', COLUMN_TYPE) AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() \
         UNION ALL SELECT CAST(CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME, ': ', ROUTINE_DEFINITION) AS CHAR) \
         FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() \
         UNION ALL SELECT CAST(CONCAT('TRIGGER ', TRIGGER_NAME, ': ', ACTION_STATEMENT) AS CHAR) \
         FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(ROUTINE_DEFINITION AS CHAR) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() \
         UNION ALL SELECT CAST(ACTION_STATEMENT AS CHAR) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_TYPE = 'BASE TABLE'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut objects = objects;
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT CAST(CONCAT_WS('|', t.*) AS CHAR) FROM (SELECT * FROM `{table}`) t"
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
        objects.extend(rows.into_iter().map(|row| format!("{table} row {row}")));
    }
    objects.sort();
    let mut bodies = bodies;
    bodies.sort();
    Snapshot { objects, bodies }
}

async fn postgres_snapshot(conn: &mut sqlx::PgConnection) -> Snapshot {
    let mut objects: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns \
         WHERE table_schema = 'public' \
         UNION ALL SELECT 'function ' || p.proname || ': ' || pg_get_functiondef(p.oid) FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT t::text FROM public.\"{table}\" t"
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        objects.extend(rows.into_iter().map(|row| format!("{table} row {row}")));
    }
    objects.sort();
    // SQL-standard bodies (BEGIN ATOMIC) have no source text kept.
    let mut bodies: Vec<String> = sqlx::query_scalar(
        "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'public' AND p.prosqlbody IS NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    bodies.sort();
    Snapshot { objects, bodies }
}

async fn sqlite_snapshot(conn: &mut sqlx::SqliteConnection) -> Snapshot {
    let mut objects: Vec<String> = sqlx::query_scalar(
        "SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT quote(rowid) || '|' || count(*) FROM \"{table}\""
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        objects.extend(rows.into_iter().map(|row| format!("{table} rows {row}")));
    }
    objects.sort();
    // SQLite keeps every CREATE as written.
    let mut bodies: Vec<String> =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    bodies.sort();
    Snapshot { objects, bodies }
}

/// Hold stowage's pieces of `script` against the server's (or the client's) parse.
async fn agrees(backend: Backend, name: &str, script: &str) {
    let (oracle, ours) = (fresh(backend, name).await, fresh(backend, name).await);
    let dialect = match backend {
        Backend::Postgres => Dialect::Postgres,
        Backend::MySql => Dialect::MySql,
        Backend::Sqlite => Dialect::Sqlite,
    };
    let pieces = statements(dialect, script);
    let delimiter = script.lines().any(|line| {
        line.trim_start()
            .to_ascii_uppercase()
            .starts_with("DELIMITER ")
    });
    macro_rules! check {
        ($conn:ty, $snapshot:ident) => {{
            let mut whole = <$conn>::connect(&oracle.url).await.unwrap();
            let expected = if delimiter {
                // `mariadb`, the client whose `DELIMITER` rule stowage follows.
                native::client(Backend::MySql, &oracle.url, script);
                None
            } else {
                Some(results!(&mut whole, script))
            };
            let mut conn = <$conn>::connect(&ours.url).await.unwrap();
            let mut counted = 0;
            for piece in &pieces {
                counted += results!(&mut conn, *piece);
            }
            if let Some(expected) = expected {
                assert_eq!(
                    counted, expected,
                    "{name}: stowage's pieces give {counted} results, the whole script {expected}\n\
                     pieces: {pieces:#?}\nscript:\n{script}"
                );
            }
            let (theirs, mine) = ($snapshot(&mut whole).await, $snapshot(&mut conn).await);
            assert_eq!(
                mine, theirs,
                "{name}: the databases differ\npieces: {pieces:#?}\nscript:\n{script}"
            );
            // MariaDB keeps string literals in routine bodies re-escaped
            // (`\"` as `""`, `\'` as `''`); the oracle's copy shows the same.
            let reescaped = script.replace("\\\"", "\"\"").replace("\\'", "''");
            for body in &mine.bodies {
                assert!(
                    script.contains(body.as_str()) || reescaped.contains(body.as_str()),
                    "{name}: stored as\n{body}\nwhich is not in the script:\n{script}"
                );
            }
        }};
    }
    match backend {
        Backend::Postgres => check!(sqlx::PgConnection, postgres_snapshot),
        Backend::MySql => check!(sqlx::MySqlConnection, mysql_snapshot),
        Backend::Sqlite => check!(sqlx::SqliteConnection, sqlite_snapshot),
    }
}

const MYSQL: &[(&str, &str)] = &[
    (
        "quotes and comments",
        "CREATE TABLE t (a INT, b VARCHAR(80));\n\
         INSERT INTO t VALUES (1, 'x;y'), (2, 'it''s; ok'), (3, \"dq; \\\" esc\"), (4, 'back\\\\slash;');\n\
         # hash comment; still a comment\n\
         -- dash comment; too\n\
         INSERT INTO t VALUES (5--1, '-- not a comment'); /* block; comment */ INSERT INTO t VALUES (6, '#no');\n\
         SELECT `a` FROM t WHERE b <> 'a;b';\n",
    ),
    (
        "a column named delimiter",
        "CREATE TABLE fmt (\n  id INT,\n  delimiter CHAR(1) NOT NULL\n);\nINSERT INTO fmt VALUES (1, ';');\n",
    ),
    (
        "a definer with an unquoted host",
        "CREATE OR REPLACE DEFINER=root@localhost PROCEDURE long_header() SQL SECURITY INVOKER COMMENT 'x;' \
         BEGIN SELECT 1; SELECT 2; END;\n",
    ),
    (
        "version comments",
        "/*!40101 SET @saved = @@character_set_client */;\n\
         CREATE TABLE v (a INT) /*!50100 ENGINE=InnoDB */;\n\
         /*!40101 SET character_set_client = @saved */;\n",
    ),
    (
        "if function and if exists",
        "DROP TABLE IF EXISTS nothing_here;\nCREATE TABLE IF NOT EXISTS f (a INT);\n\
         INSERT INTO f VALUES (IF(1 > 0, 1, 2));\nSET @c = CASE WHEN 1 THEN REPEAT('a;', 2) ELSE 'b' END;\n\
         INSERT INTO f SELECT CASE WHEN a = 1 THEN 10 END FROM f;\n",
    ),
    (
        "compound bodies",
        "CREATE TABLE c (n INT);\n\
         CREATE PROCEDURE every_block(x INT)\nBEGIN\n  DECLARE i INT DEFAULT 0;\n\
           DECLARE done INT DEFAULT 0;\n  DECLARE cur CURSOR FOR SELECT n FROM c;\n\
           DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;\n\
           IF x > 0 THEN SET i = 1; ELSEIF x < 0 THEN SET i = -1; ELSE SET i = 0; END IF;\n\
           CASE i WHEN 1 THEN SET i = 2; ELSE BEGIN END; END CASE;\n\
           outer_loop: LOOP\n    block: BEGIN\n      SET i = i + 1;\n      IF i > 5 THEN LEAVE outer_loop; END IF;\n    END block;\n  END LOOP outer_loop;\n\
           WHILE i > 0 DO SET i = i - 1; END WHILE;\n  REPEAT SET i = i + 1; UNTIL i >= 3 END REPEAT;\n\
           INSERT INTO c VALUES (i);\nEND;\n\
         CREATE FUNCTION half(x INT) RETURNS INT DETERMINISTIC RETURN x DIV 2;\n\
         CREATE TRIGGER c_ins BEFORE INSERT ON c FOR EACH ROW BEGIN IF NEW.n < 0 THEN SET NEW.n = 0; END IF; END;\n\
         CREATE EVENT IF NOT EXISTS e ON SCHEDULE EVERY 1 DAY DISABLE DO BEGIN DELETE FROM c WHERE n > 100; END;\n\
         INSERT INTO c VALUES (half(-8));\n",
    ),
    (
        "delimiters as mysqldump and tutorials write them",
        "CREATE TABLE d (n INT);\nDELIMITER ;;\n\
         /*!50003 CREATE*/ /*!50003 TRIGGER d_ins AFTER INSERT ON d FOR EACH ROW BEGIN\n  SET @last = NEW.n;\nEND */;;\n\
         DELIMITER //\nCREATE PROCEDURE dp()\nBEGIN\n  INSERT INTO d VALUES (1);\n  SELECT 'a//b;' INTO @s;\nEND//\n\
         delimiter $$\nCREATE FUNCTION df() RETURNS INT DETERMINISTIC\nBEGIN\n  RETURN 7;\nEND $$\nDELIMITER ;\n\
         CALL dp();\nINSERT INTO d VALUES (df());\n",
    ),
];

const NON_ASCII: &str = "CREATE TABLE größe (maß INT, naïve VARCHAR(20));\n\
                          INSERT INTO größe (maß, naïve) VALUES (1, 'ü;ö'); -- ß; comment\n\
                          SELECT maß FROM größe WHERE naïve <> 'é';\n";

#[tokio::test]
async fn unquoted_non_ascii_names() {
    for backend in [Backend::MySql, Backend::Postgres, Backend::Sqlite] {
        agrees(backend, "non-ASCII names", NON_ASCII).await;
    }
}

const POSTGRES: &[(&str, &str)] = &[
    (
        "quotes, dollar quotes and comments",
        "CREATE TABLE t (a int, b text);\n\
         INSERT INTO t VALUES (1, 'x;y'), (2, 'it''s; ok'), (3, E'e\\'s; escaped'), (4, $$dollar; $ quoted$$);\n\
         INSERT INTO t VALUES (5, $tag$ $$ ; $tag$), (6, $ü$ non-ASCII; tag $ü$);\n\
         /* outer /* nested; */ still a comment; */ INSERT INTO t VALUES (7, '-- no');\n\
         -- line; comment\nSELECT a FROM t WHERE b <> 'a;b';\n",
    ),
    (
        "function bodies",
        "CREATE TABLE f (n int);\n\
         CREATE FUNCTION plus(a int, b int) RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\n  RETURN a + b; -- ;\nEND;\n$body$;\n\
         CREATE FUNCTION atomic_double(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT x * 2;\nEND;\n\
         CREATE FUNCTION atomic_two(x int) RETURNS void LANGUAGE sql\nBEGIN ATOMIC\n  INSERT INTO f VALUES (x);\n  INSERT INTO f VALUES (x + 1);\nEND;\n\
         DO $$ BEGIN PERFORM plus(1, 2); END $$;\n\
         SELECT atomic_two(plus(1, atomic_double(2)));\n",
    ),
];

const SQLITE: &[(&str, &str)] = &[(
    "trigger bodies with CASE",
    "CREATE TABLE t (a INTEGER, b TEXT);\n\
     CREATE TABLE log (msg TEXT);\n\
     CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n\
       INSERT INTO log VALUES (CASE WHEN NEW.a > 0 THEN 'pos;' ELSE 'neg' END);\n\
       UPDATE t SET b = CASE NEW.a WHEN 1 THEN 'one' ELSE 'many;' END WHERE rowid = NEW.rowid;\n\
     END;\n\
     INSERT INTO t (a) VALUES (1), (-2); -- ; comment\n/* ; */ INSERT INTO t (a, b) VALUES (3, 'x;y');\n",
)];

#[tokio::test]
async fn mysql_corpus() {
    for (name, script) in MYSQL {
        agrees(Backend::MySql, name, script).await;
    }
}

#[tokio::test]
async fn postgres_corpus() {
    for (name, script) in POSTGRES {
        agrees(Backend::Postgres, name, script).await;
    }
}

#[tokio::test]
async fn sqlite_corpus() {
    for (name, script) in SQLITE {
        agrees(Backend::Sqlite, name, script).await;
    }
}

/// A small seeded generator (SplitMix64): enough to splice shapes, and
/// replayable from the printed seed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len())]
    }
}

fn seed() -> u64 {
    let seed = std::env::var("STOWAGE_BOUNDARY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    eprintln!("boundaries: STOWAGE_BOUNDARY_SEED={seed}");
    seed
}

/// A comment to put before a statement, or none.
fn comment(dice: &mut Dice, hash: bool, nested: bool) -> String {
    match dice.below(6) {
        0 => "-- a comment; with a semicolon\n".to_owned(),
        1 if hash => "# hash; comment\n".to_owned(),
        2 => "/* block; comment */ ".to_owned(),
        3 if nested => "/* outer /* inner; */ still; */\n".to_owned(),
        _ => String::new(),
    }
}

/// A MySQL script of generated statements, written plainly or with
/// `DELIMITER`.
fn mysql_script(dice: &mut Dice) -> String {
    const STRINGS: &[&str] = &[
        "'x;y'",
        "'it''s'",
        "'a\\'b;'",
        "\"dq;\\\"q\"",
        "'-- no'",
        "'#no'",
        "'/* no */'",
        "'END IF;'",
        "'$$'",
        "'//'",
        "';;'",
        "'BEGIN'",
    ];
    const NUMBERS: &[&str] = &["1", "7--1", "(2)", "3 /* ; */", "IF(1 > 0, 4, 5)"];
    let mut statements: Vec<String> = vec!["CREATE TABLE t0 (a INT, b VARCHAR(100))".to_owned()];
    let (mut tables, mut procedures) = (1, 0);
    for n in 0..3 + dice.below(6) {
        let k = dice.below(tables);
        let statement = match dice.below(9) {
            0 => {
                tables += 1;
                format!(
                    "CREATE TABLE IF NOT EXISTS t{} (a INT, b VARCHAR(100))",
                    tables - 1
                )
            }
            1 | 2 => format!(
                "INSERT INTO t{k} (a, b) VALUES ({}, {})",
                dice.pick(NUMBERS),
                dice.pick(STRINGS)
            ),
            3 => format!(
                "SELECT IF(a > 0, 'p;', 'n'), b FROM t{k} WHERE b <> {}",
                dice.pick(STRINGS)
            ),
            4 => format!(
                "SET @v{n} = CASE WHEN 1 THEN REPEAT({}, 2) ELSE NULL END",
                dice.pick(STRINGS)
            ),
            5 => {
                procedures += 1;
                format!(
                    "CREATE PROCEDURE p{}()\nBEGIN\n  IF 1 > 0 THEN INSERT INTO t{k} (a, b) VALUES (1, {}); END IF;\n  \
                     CASE WHEN 1 THEN SET @z = 1; ELSE BEGIN END; END CASE;\n  l{n}: LOOP LEAVE l{n}; END LOOP l{n};\nEND",
                    procedures - 1,
                    dice.pick(STRINGS)
                )
            }
            6 => format!(
                "CREATE TRIGGER tr{n} BEFORE INSERT ON t{k} FOR EACH ROW BEGIN IF NEW.a IS NULL THEN SET NEW.a = 0; END IF; END"
            ),
            7 if procedures > 0 => format!("CALL p{}()", dice.below(procedures)),
            _ => format!("DROP TABLE IF EXISTS nothing{n}"),
        };
        statements.push(statement);
    }
    let mut script = String::new();
    if dice.below(3) == 0 {
        let delimiter = dice.pick(&[";;", "//", "$$"]);
        script.push_str(&format!("DELIMITER {delimiter}\n"));
        for statement in &statements {
            script.push_str(&format!(
                "{}{statement}{delimiter}\n",
                comment(dice, true, false)
            ));
        }
        script.push_str("DELIMITER ;\n");
    } else {
        for statement in &statements {
            script.push_str(&format!("{}{statement};\n", comment(dice, true, false)));
        }
    }
    script
}

/// A PostgreSQL script of generated statements.
fn postgres_script(dice: &mut Dice) -> String {
    const STRINGS: &[&str] = &[
        "'x;y'",
        "'it''s'",
        "E'e\\'s;'",
        "$$d;$$",
        "$q$ $$ ; $q$",
        "$é$ x; $é$",
        "'-- no'",
        "'/* no */'",
        "'$$'",
        "'BEGIN'",
    ];
    let mut statements: Vec<String> = vec!["CREATE TABLE t0 (a int, b text)".to_owned()];
    let mut tables = 1;
    for n in 0..3 + dice.below(6) {
        let k = dice.below(tables);
        let statement = match dice.below(7) {
            0 => {
                tables += 1;
                format!("CREATE TABLE t{} (a int, b text)", tables - 1)
            }
            1 | 2 => format!(
                "INSERT INTO t{k} (a, b) VALUES ({n}, {})",
                dice.pick(STRINGS)
            ),
            3 => format!(
                "CREATE FUNCTION f{n}() RETURNS text LANGUAGE plpgsql AS $f{n}$\nBEGIN\n  RETURN {}; -- ;\nEND;\n$f{n}$",
                dice.pick(STRINGS)
            ),
            4 => format!(
                "CREATE FUNCTION g{n}(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT x + 1;\nEND"
            ),
            5 => "DO $$ BEGIN PERFORM 1; END $$".to_owned(),
            _ => format!("SELECT b FROM t{k} WHERE b <> {}", dice.pick(STRINGS)),
        };
        statements.push(statement);
    }
    statements
        .iter()
        .map(|statement| format!("{}{statement};\n", comment(dice, false, true)))
        .collect()
}

/// A SQLite script of generated statements.
fn sqlite_script(dice: &mut Dice) -> String {
    const STRINGS: &[&str] = &[
        "'x;y'",
        "'it''s'",
        "'-- no'",
        "'/* no */'",
        "'END;'",
        "'BEGIN'",
    ];
    let mut statements: Vec<String> = vec!["CREATE TABLE t0 (a INTEGER, b TEXT)".to_owned()];
    let mut tables = 1;
    for n in 0..3 + dice.below(6) {
        let k = dice.below(tables);
        let statement = match dice.below(5) {
            0 => {
                tables += 1;
                format!("CREATE TABLE t{} (a INTEGER, b TEXT)", tables - 1)
            }
            1 | 2 => format!(
                "INSERT INTO t{k} (a, b) VALUES ({n}, {})",
                dice.pick(STRINGS)
            ),
            3 => format!(
                "CREATE TRIGGER tr{n} AFTER INSERT ON t{k} BEGIN\n  UPDATE t{k} SET b = CASE WHEN NEW.a > 0 THEN {} ELSE 'n' END \
                 WHERE rowid = NEW.rowid;\nEND",
                dice.pick(STRINGS)
            ),
            _ => format!("SELECT b FROM t{k} WHERE b <> {}", dice.pick(STRINGS)),
        };
        statements.push(statement);
    }
    statements
        .iter()
        .map(|statement| format!("{}{statement};\n", comment(dice, false, false)))
        .collect()
}

/// How many generated scripts each backend is held to per run: enough to
/// cover every shape in several orders, few enough for CI.
const GENERATED: u64 = 12;

#[tokio::test]
async fn generated_mysql_scripts() {
    let seed = seed();
    for case in 0..GENERATED {
        let script = mysql_script(&mut Dice(seed ^ case));
        agrees(Backend::MySql, &format!("seed {seed} case {case}"), &script).await;
    }
}

#[tokio::test]
async fn generated_postgres_scripts() {
    let seed = seed();
    for case in 0..GENERATED {
        let script = postgres_script(&mut Dice(seed ^ case));
        agrees(
            Backend::Postgres,
            &format!("seed {seed} case {case}"),
            &script,
        )
        .await;
    }
}

#[tokio::test]
async fn generated_sqlite_scripts() {
    let seed = seed();
    for case in 0..GENERATED {
        let script = sqlite_script(&mut Dice(seed ^ case));
        agrees(
            Backend::Sqlite,
            &format!("seed {seed} case {case}"),
            &script,
        )
        .await;
    }
}
