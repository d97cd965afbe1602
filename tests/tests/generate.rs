//! `Schema::migration_to`: each class of change, on every backend,
//! with rows in the tables. For each: a database built from `before`
//! holding rows, the desired schema built from `after` in another; the
//! generated up, applied by the database's own client, must give the
//! desired schema (the server's catalogue read back) and keep the rows;
//! the generated down must give `before`'s schema again.

use stowage::{Migrator, Schema};
use stowage_tests::{Backend, fresh, native};

static ANY: Migrator = stowage::embed_migrations!("fixtures/lone");

/// One class of change: the schema before and after, the rows put into
/// table `t` before, and how many of them `t` must still hold.
struct Case {
    name: &'static str,
    before: &'static str,
    after: &'static str,
    rows: &'static str,
    kept: i64,
    /// A word a warning must hold, for a change that can lose data.
    warns: Option<&'static str>,
    /// A row added after `up` (into `t`, and deleted before `down`): the
    /// table takes new rows as before.
    then: Option<&'static str>,
}

const fn case(
    name: &'static str,
    before: &'static str,
    after: &'static str,
    warns: Option<&'static str>,
) -> Case {
    Case {
        name,
        before,
        after,
        rows: "INSERT INTO t (id, a) VALUES (1, 'x'), (2, 'y');",
        kept: 2,
        warns,
        then: None,
    }
}

const T: &str = "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);";

/// The cases whose SQL every backend takes as it is.
const EVERYWHERE: &[Case] = &[
    case(
        "column added without a default",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, b text);",
        None,
    ),
    case(
        "column dropped",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, b text);",
        T,
        Some("drops column"),
    ),
];

const POSTGRES: &[Case] = &[
    Case {
        // hydra's `hydra_client`, whose `_json` columns took the old
        // columns' names (no rename hint): text made jsonb, in a rebuild.
        name: "a column retyped where the table is rebuilt",
        before: "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, j text);",
        after: "CREATE TABLE t (j jsonb, id integer PRIMARY KEY, a varchar(20) NOT NULL);",
        rows: "INSERT INTO t (id, a, j) VALUES (1, 'x', '[1]'), (2, 'y', '{}');",
        kept: 2,
        warns: Some("conversion of its rows"),
        then: None,
    },
    case(
        "column settings added, changed and reset",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, b text);
         ALTER TABLE t ALTER COLUMN a SET (n_distinct = -0.5);
         ALTER TABLE t ALTER COLUMN b SET STATISTICS 300;",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, b text);
         ALTER TABLE t ALTER COLUMN a SET (n_distinct = -0.2);
         ALTER TABLE t ALTER COLUMN id SET STATISTICS 50;",
        None,
    ),
    case(
        "column added with a default",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, b integer DEFAULT 0 NOT NULL);",
        None,
    ),
    case(
        "type changed",
        T,
        "CREATE TABLE t (id bigint PRIMARY KEY, a text NOT NULL);",
        Some("changes the type"),
    ),
    case(
        "default changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL DEFAULT 'one');",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL DEFAULT 'two');",
        None,
    ),
    case(
        "nullability changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20));",
        T,
        Some("NOT NULL"),
    ),
    case(
        "index added, dropped and changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE INDEX t_a ON t (a); CREATE INDEX t_gone ON t (id, a);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE INDEX t_a ON t (lower(a)); CREATE UNIQUE INDEX t_new ON t (a, id);",
        None,
    ),
    case(
        "unique and check constraints",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL UNIQUE CHECK (a <> ''));",
        None,
    ),
    case(
        "foreign key added",
        "CREATE TABLE p (id integer PRIMARY KEY); INSERT INTO p VALUES (1), (2);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);",
        "CREATE TABLE p (id integer PRIMARY KEY);
         CREATE TABLE t (id integer PRIMARY KEY REFERENCES p (id) ON DELETE CASCADE, a varchar(20) NOT NULL);",
        None,
    ),
    case(
        "a view on a column whose type changes",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE VIEW v AS SELECT a FROM t; CREATE VIEW w AS SELECT * FROM v;",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(40) NOT NULL); CREATE VIEW v AS SELECT a, id FROM t; CREATE VIEW w AS SELECT * FROM v;",
        Some("changes the type"),
    ),
    case(
        "function and trigger changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.a := upper(NEW.a); RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch();",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.a := lower(NEW.a); RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();",
        None,
    ),
    Case {
        then: Some("INSERT INTO t (a) VALUES ('z')"),
        ..case(
        "columns in another order, under a foreign key, an index and a view",
        "CREATE TABLE t (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, a varchar(20) NOT NULL, gone text);
         CREATE INDEX t_a ON t (a); CREATE VIEW v AS SELECT a FROM t;
         CREATE TABLE c (id integer PRIMARY KEY, t_id integer REFERENCES t (id));
         COMMENT ON COLUMN t.a IS 'the a';",
        "CREATE TABLE t (b text DEFAULT 'b', id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, a varchar(20) NOT NULL UNIQUE);
         CREATE INDEX t_a ON t (a); CREATE VIEW v AS SELECT a FROM t;
         CREATE TABLE c (id integer PRIMARY KEY, t_id integer REFERENCES t (id));
         COMMENT ON COLUMN t.a IS 'the a';",
        Some("rebuilds table"),
    )
    },
    Case {
        rows: "INSERT INTO t (id, a, m) VALUES (1, 'x', 'sad'), (2, 'y', 'happy');",
        ..case(
            "enum value added (and, down, removed: the type made again)",
            "CREATE TYPE mood AS ENUM ('sad', 'happy');
             CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m mood DEFAULT 'sad', ms mood[]);
             CREATE VIEW moods AS SELECT m FROM t;",
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'great');
             CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m mood DEFAULT 'sad', ms mood[]);
             CREATE VIEW moods AS SELECT m FROM t;",
            None,
        )
    },
    Case {
        rows: "INSERT INTO t (id, a, m) VALUES (1, 'x', 'sad'), (2, 'y', 'happy');",
        ..case(
            "enum values reordered",
            "CREATE TYPE mood AS ENUM ('sad', 'happy');
             CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m mood DEFAULT 'sad');",
            "CREATE TYPE mood AS ENUM ('happy', 'sad');
             CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m mood DEFAULT 'sad');",
            Some("makes type public.mood again"),
        )
    },
    case(
        "a function's return type changed, under a trigger",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);
         CREATE FUNCTION score(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT x $$;
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch();",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);
         CREATE FUNCTION score(x integer) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$ SELECT x * 1.5 $$;
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.a := NEW.a; RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch();",
        None,
    ),
    case(
        "table added and dropped",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE gone (id integer);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE added (id serial PRIMARY KEY, at timestamptz DEFAULT now());",
        Some("drops table"),
    ),
    case(
        "a table renamed without a hint, its sequence kept",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE old_log (id serial PRIMARY KEY, m text);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);
         CREATE SEQUENCE old_log_id_seq;
         CREATE TABLE new_log (id integer PRIMARY KEY DEFAULT nextval('old_log_id_seq'), m text);
         ALTER SEQUENCE old_log_id_seq OWNED BY new_log.id;",
        Some("if it is a rename"),
    ),
    case(
        "a number column made an enum",
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m smallint);",
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m mood);",
        Some("USING"),
    ),
];

const SQLITE: &[Case] = &[
    case(
        "unique and check constraints",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL UNIQUE, CHECK (length(a) < 10));",
        None,
    ),
    case(
        "column added",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, b integer NOT NULL DEFAULT 0);",
        None,
    ),
    case(
        "type, default and nullability changed",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, a text DEFAULT 'none');",
        None,
    ),
    case(
        "index added, dropped and changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE INDEX t_a ON t (a); CREATE INDEX t_gone ON t (id, a);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE INDEX t_a ON t (lower(a)); CREATE UNIQUE INDEX t_new ON t (a, id);",
        None,
    ),
    case(
        "a table changed under its index, trigger and a view",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE INDEX t_a ON t (a);
         CREATE TABLE log (id integer);
         CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (NEW.id); END;
         CREATE VIEW v AS SELECT a FROM t;",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL CHECK (a <> ''), b text); CREATE INDEX t_a ON t (a);
         CREATE TABLE log (id integer);
         CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (NEW.id); END;
         CREATE VIEW v AS SELECT a FROM t;",
        Some("rebuilds table t"),
    ),
    case(
        "foreign key added",
        "CREATE TABLE p (id integer PRIMARY KEY); INSERT INTO p VALUES (1), (2);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);",
        "CREATE TABLE p (id integer PRIMARY KEY);
         CREATE TABLE t (id integer PRIMARY KEY REFERENCES p (id), a varchar(20) NOT NULL);",
        None,
    ),
    case(
        "view and trigger changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE log (id integer);
         CREATE VIEW v AS SELECT a FROM t;
         CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (NEW.id); END;",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE log (id integer);
         CREATE VIEW v AS SELECT a, id FROM t;
         CREATE TRIGGER t_log AFTER UPDATE ON t BEGIN INSERT INTO log VALUES (NEW.id); END;",
        None,
    ),
    case(
        "table added and dropped",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE gone (id integer);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE added (id integer PRIMARY KEY);",
        Some("drops table"),
    ),
];

const MYSQL: &[Case] = &[
    case(
        "enum value added",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m ENUM('sad', 'happy') DEFAULT 'sad');",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, m ENUM('sad', 'happy', 'meh') DEFAULT 'sad');",
        None,
    ),
    case(
        "a referenced key changed under a foreign key",
        "CREATE TABLE p (k varchar(20) NOT NULL, UNIQUE KEY pk (k)); INSERT INTO p VALUES ('x'), ('y');
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, CONSTRAINT t_p FOREIGN KEY (a) REFERENCES p (k));",
        "CREATE TABLE p (k varchar(20) NOT NULL, n integer NOT NULL DEFAULT 0, UNIQUE KEY pk (k, n));
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, n integer NOT NULL DEFAULT 0,
           CONSTRAINT t_p FOREIGN KEY (a, n) REFERENCES p (k, n));",
        None,
    ),
    case(
        // vaultwarden's `twofactor` when its `type` became `atype`: the
        // unique key is the only index the unchanged foreign key can use.
        "the key an unchanged foreign key uses changed",
        "CREATE TABLE p (id integer PRIMARY KEY); INSERT INTO p VALUES (1), (2);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, pid integer NOT NULL DEFAULT 1,
           UNIQUE KEY t_pid (pid, id), CONSTRAINT t_p FOREIGN KEY (pid) REFERENCES p (id));",
        "CREATE TABLE p (id integer PRIMARY KEY);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, pid integer NOT NULL DEFAULT 1,
           UNIQUE KEY t_pid (pid, a), CONSTRAINT t_p FOREIGN KEY (pid) REFERENCES p (id));",
        None,
    ),
    case(
        // hydra's `hydra_client` given a surrogate key: the server refuses
        // an auto-increment column without its key, one statement apart.
        "an auto-increment key added in place of the primary key",
        T,
        "CREATE TABLE t (id integer NOT NULL, a varchar(20) NOT NULL,
           pk integer unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, UNIQUE KEY t_id (id));",
        None,
    ),
    case(
        // hydra's `hydra_jwk`, whose key became a UUID beside the old one.
        "the auto-increment column moved to another column",
        "CREATE TABLE t (id integer PRIMARY KEY AUTO_INCREMENT, a varchar(20) NOT NULL);",
        "CREATE TABLE t (id char(36) NOT NULL PRIMARY KEY, a varchar(20) NOT NULL,
           old_id integer NOT NULL AUTO_INCREMENT, UNIQUE KEY t_old (old_id));",
        Some("changes column"),
    ),
    case(
        "a unique key added beside a foreign key's",
        "CREATE TABLE p (id integer PRIMARY KEY);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, pid integer, FOREIGN KEY (pid) REFERENCES p (id));",
        "CREATE TABLE p (id integer PRIMARY KEY);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, pid integer, FOREIGN KEY (pid) REFERENCES p (id));
         CREATE UNIQUE INDEX t_a ON t (a);",
        None,
    ),
    case(
        "column added with a default, in the middle",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, b integer NOT NULL DEFAULT 0, a varchar(20) NOT NULL);",
        None,
    ),
    case(
        "type, default and nullability changed",
        T,
        "CREATE TABLE t (id bigint PRIMARY KEY, a varchar(40) DEFAULT 'none');",
        Some("changes column"),
    ),
    case(
        "columns in another order",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, b text);",
        "CREATE TABLE t (b text, a varchar(20) NOT NULL, id integer PRIMARY KEY);",
        None,
    ),
    case(
        "index added, dropped and changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE INDEX t_a ON t (a); CREATE INDEX t_gone ON t (id, a);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE INDEX t_a ON t (a, id); CREATE UNIQUE INDEX t_new ON t (a);",
        None,
    ),
    case(
        "unique and check constraints",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL UNIQUE, CONSTRAINT a_set CHECK (a <> ''));",
        None,
    ),
    case(
        "foreign key added",
        "CREATE TABLE p (id integer PRIMARY KEY); INSERT INTO p VALUES (1), (2);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL);",
        "CREATE TABLE p (id integer PRIMARY KEY);
         CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL, CONSTRAINT t_p FOREIGN KEY (id) REFERENCES p (id) ON DELETE CASCADE);",
        None,
    ),
    case(
        "view, routine and trigger changed",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE log (id integer);
         CREATE VIEW v AS SELECT a FROM t;
         CREATE FUNCTION twice(x integer) RETURNS integer DETERMINISTIC RETURN x * 2;
         CREATE TRIGGER t_log AFTER INSERT ON t FOR EACH ROW INSERT INTO log VALUES (NEW.id);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE log (id integer);
         CREATE VIEW v AS SELECT a, id FROM t;
         CREATE FUNCTION twice(x integer) RETURNS integer DETERMINISTIC RETURN x + x;
         CREATE TRIGGER t_log AFTER UPDATE ON t FOR EACH ROW INSERT INTO log VALUES (NEW.id);",
        None,
    ),
    case(
        "table options changed",
        T,
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL) COMMENT 'the t';",
        None,
    ),
    case(
        "table added and dropped",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE gone (id integer);",
        "CREATE TABLE t (id integer PRIMARY KEY, a varchar(20) NOT NULL); CREATE TABLE added (id integer AUTO_INCREMENT PRIMARY KEY);",
        Some("drops table"),
    ),
];

async fn schema_of(backend: Backend, sql: &str) -> Schema {
    let db = fresh(backend, "desired").await;
    native::client(backend, &db.url, sql);
    db.pool().await.dump(&ANY).await
}

async fn each_class_of_change(backend: Backend, cases: &[Case]) {
    for case in EVERYWHERE.iter().chain(cases) {
        let name = case.name;
        let before = schema_of(backend, case.before).await;
        let after = schema_of(backend, case.after).await;
        let generated = before.migration_to(&after);
        assert!(!generated.is_empty(), "{name}: nothing generated");
        if let Some(word) = case.warns {
            assert!(
                generated.warnings.iter().any(|w| w.contains(word)),
                "{name}: no warning of {word}: {:?}",
                generated.warnings
            );
            assert!(generated.up.starts_with("-- "), "{name}: {}", generated.up);
        }
        let db = fresh(backend, "generated").await;
        native::client(backend, &db.url, case.before);
        native::client(backend, &db.url, case.rows);
        let pool = db.pool().await;
        if let Err(error) = native::try_client(backend, &db.url, &generated.up) {
            panic!("{name}: up does not apply: {error}\n{}", generated.up);
        }
        let up = pool.dump(&ANY).await;
        assert_eq!(
            up,
            after,
            "{name}: up\n{}\n{:#?}",
            generated.up,
            up.diff(&after)
        );
        assert_eq!(
            pool.i64("SELECT COUNT(*) FROM t").await,
            case.kept,
            "{name}: the rows are kept"
        );
        if let Some(insert) = case.then {
            native::client(backend, &db.url, insert);
            assert_eq!(
                pool.i64("SELECT COUNT(*) FROM t").await,
                case.kept + 1,
                "{name}"
            );
            native::client(backend, &db.url, "DELETE FROM t WHERE a = 'z'");
        }
        assert!(!generated.up.contains("TODO"), "{name}: {}", generated.up);
        assert!(
            !generated.down.contains("TODO"),
            "{name}: {}",
            generated.down
        );
        if let Err(error) = native::try_client(backend, &db.url, &generated.down) {
            panic!("{name}: down does not apply: {error}\n{}", generated.down);
        }
        let down = pool.dump(&ANY).await;
        assert_eq!(
            down,
            before,
            "{name}: down\n{}\n{:#?}",
            generated.down,
            down.diff(&before)
        );
        assert_eq!(
            pool.i64("SELECT COUNT(*) FROM t").await,
            case.kept,
            "{name}: down keeps them"
        );
    }
    // Equal schemas: nothing to write.
    let same = schema_of(backend, T).await;
    assert!(same.migration_to(&same).is_empty());
}

#[tokio::test]
async fn postgres_each_class_of_change() {
    each_class_of_change(Backend::Postgres, POSTGRES).await;
}

#[tokio::test]
async fn mysql_each_class_of_change() {
    each_class_of_change(Backend::MySql, MYSQL).await;
}

#[tokio::test]
async fn sqlite_each_class_of_change() {
    each_class_of_change(Backend::Sqlite, SQLITE).await;
}

static RENAMING: Migrator = stowage::embed_migrations!("fixtures/renaming");

/// A table and a column renamed: without hints, a drop and an add, said
/// so; with them, `ALTER TABLE … RENAME`, the rows kept (the column's
/// values too), the index and the view that use them following.
async fn renamed_with_hints(backend: Backend) {
    let before = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/renaming/1_users.sql"
    ))
    .unwrap();
    let after = "CREATE TABLE people (id integer PRIMARY KEY, full_name varchar(40) NOT NULL, email varchar(80));
                 CREATE INDEX users_name ON people (full_name);
                 CREATE VIEW user_names AS SELECT id, full_name FROM people;";
    let desired = schema_of(backend, after).await;
    let server = fresh(backend, "server").await;
    let unhinted = RENAMING
        .generate(&server.url, &desired, &stowage::Renames::new())
        .await
        .unwrap();
    assert!(
        unhinted
            .warnings
            .iter()
            .any(|w| w.contains("if it is a rename")),
        "{:?}",
        unhinted.warnings
    );
    let renames = stowage::Renames::new()
        .hint("users=people")
        .unwrap()
        .hint("users.name=full_name")
        .unwrap();
    let generated = RENAMING
        .generate(&server.url, &desired, &renames)
        .await
        .unwrap();
    assert!(generated.up.contains("RENAME"), "{}", generated.up);
    assert!(
        !generated.warnings.iter().any(|w| w.contains("drops")),
        "{:?}\n{}",
        generated.warnings,
        generated.up
    );

    let db = fresh(backend, "renamed").await;
    native::client(backend, &db.url, &before);
    native::client(
        backend,
        &db.url,
        "INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'brian');",
    );
    let pool = db.pool().await;
    let built = pool.dump(&ANY).await;
    if let Err(error) = native::try_client(backend, &db.url, &generated.up) {
        panic!("{backend:?}: up does not apply: {error}\n{}", generated.up);
    }
    let up = pool.dump(&ANY).await;
    assert_eq!(up, desired, "{}\n{:#?}", generated.up, up.diff(&desired));
    assert_eq!(
        pool.i64("SELECT COUNT(*) FROM people WHERE full_name IN ('ada', 'brian')")
            .await,
        2,
        "the rows and their values are kept"
    );
    if let Err(error) = native::try_client(backend, &db.url, &generated.down) {
        panic!(
            "{backend:?}: down does not apply: {error}\n{}",
            generated.down
        );
    }
    let down = pool.dump(&ANY).await;
    assert_eq!(down, built, "{}\n{:#?}", generated.down, down.diff(&built));
    assert_eq!(
        pool.i64("SELECT COUNT(*) FROM users WHERE name IN ('ada', 'brian')")
            .await,
        2,
        "down keeps them"
    );

    // A hint naming what is not there is refused before anything is made.
    for (hint, says) in [
        ("accounts=people", "no table accounts"),
        ("users=nobody", "no table nobody"),
    ] {
        let renames = stowage::Renames::new().hint(hint).unwrap();
        let error = RENAMING
            .generate(&server.url, &desired, &renames)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{hint}: {error}");
    }
}

#[tokio::test]
async fn postgres_renamed_with_hints() {
    renamed_with_hints(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_renamed_with_hints() {
    renamed_with_hints(Backend::MySql).await;
}

#[tokio::test]
async fn sqlite_renamed_with_hints() {
    renamed_with_hints(Backend::Sqlite).await;
}
