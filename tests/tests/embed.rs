//! What `embed_migrations!` embeds, for every layout, and that
//! `Migrator::from_dir` builds the very same model.

use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};
use stowage::{Dialect, Event, Migration, Migrator};

static SIMPLE: Migrator = stowage::embed_migrations!("fixtures/simple");
static REVERSIBLE: Migrator = stowage::embed_migrations!("fixtures/reversible");
static REFINERY: Migrator = stowage::embed_migrations!("fixtures/refinery");
static DIESEL: Migrator = stowage::embed_migrations!("fixtures/diesel");
static MULTI: Migrator = stowage::embed_migrations!("fixtures/multi");
static LF: Migrator = stowage::embed_migrations!("fixtures/lf");
static CRLF: Migrator = stowage::embed_migrations!("fixtures/crlf");
static EXAMPLE: Migrator = stowage::embed_migrations!("../examples/todo/migrations");
static DIESEL_PROJECT: Migrator = stowage::embed_migrations!("fixtures/diesel_project");
static UNDO_PREFIX: Migrator = stowage::embed_migrations!("fixtures/undo_prefix");
static REFINERY_GROUPS: Migrator = stowage::embed_migrations!("fixtures/refinery_groups");
static DOTTED: Migrator = stowage::embed_migrations!("fixtures/dotted");
static FLYWAY: Migrator = stowage::embed_migrations!("fixtures/flyway/v1");

static SIMPLE_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/simple");
static REVERSIBLE_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/reversible");
static REFINERY_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/refinery");
static DIESEL_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/diesel");
static MULTI_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/multi");
static LF_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/lf");
static CRLF_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/crlf");
static EXAMPLE_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../examples/todo/migrations");
static DIESEL_PROJECT_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/diesel_project");
static UNDO_PREFIX_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/undo_prefix");
static REFINERY_GROUPS_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/refinery_groups");
static DOTTED_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/dotted");
static FLYWAY_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/flyway/v1");
static BROKEN_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/ui/fixtures/many_problems");

fn versions(migrator: &Migrator) -> Vec<i64> {
    migrator.iter().map(Migration::version).collect()
}

fn file(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn sqlx_simple_layout() {
    assert_eq!(versions(&SIMPLE), [1, 2]);
    let [first, second] = [
        &SIMPLE.iter().next().unwrap(),
        &SIMPLE.iter().nth(1).unwrap(),
    ];
    assert_eq!(first.description(), "create users");
    assert_eq!(first.source_path(), "1_create_users.sql");
    assert_eq!(first.up_sql(), file("fixtures/simple/1_create_users.sql"));
    assert_eq!(first.down_sql(), None);
    assert!(!first.no_transaction());
    assert_eq!(second.description(), "add email");
    assert!(
        second.no_transaction(),
        "sqlx's `-- no-transaction` is a directive"
    );
}

#[test]
fn sqlx_reversible_layout() {
    assert_eq!(
        versions(&REVERSIBLE),
        [20_260_101_120_000, 20_260_102_120_000]
    );
    let first = REVERSIBLE.iter().next().unwrap();
    assert_eq!(first.source_path(), "20260101120000_create_users.up.sql");
    assert_eq!(
        first.up_sql(),
        file("fixtures/reversible/20260101120000_create_users.up.sql")
    );
    assert_eq!(
        first.down_sql(),
        Some(&*file(
            "fixtures/reversible/20260101120000_create_users.down.sql"
        ))
    );
    assert_eq!(
        first.down_path(),
        Some("20260101120000_create_users.down.sql")
    );
    assert!(!first.no_transaction());
    let second = REVERSIBLE.iter().nth(1).unwrap();
    assert_eq!(second.description(), "add index");
    assert_eq!(second.down_sql(), Some("DROP INDEX users_id;\n"));
    assert!(second.no_transaction());
}

#[test]
fn refinery_layout_sorts_numerically() {
    assert_eq!(versions(&REFINERY), [1, 2, 10]);
    let descriptions: Vec<&str> = REFINERY.iter().map(Migration::description).collect();
    assert_eq!(descriptions, ["create users", "add email", "index email"]);
    assert_eq!(
        REFINERY.iter().last().unwrap().source_path(),
        "V10__index_email.sql"
    );
    assert!(
        REFINERY
            .iter()
            .all(|m| m.down_sql().is_none() && m.down_path().is_none())
    );
}

#[test]
fn diesel_layout() {
    assert_eq!(
        versions(&DIESEL),
        // `yyyy-mm-dd-hhmmss` as `yyyy-mm-dd-hhmmss-0000`, as diesel orders them.
        [202_601_011_200_000_000, 202_601_021_200_000_000]
    );
    let first = DIESEL.iter().next().unwrap();
    assert_eq!(first.source_path(), "2026-01-01-120000_create_users");
    assert_eq!(first.description(), "create users");
    assert_eq!(
        first.up_sql(),
        file("fixtures/diesel/2026-01-01-120000_create_users/up.sql")
    );
    assert_eq!(first.down_sql(), Some("DROP TABLE users;\n"));
    assert_eq!(
        first.down_path(),
        Some("2026-01-01-120000_create_users/down.sql")
    );
    assert!(!first.no_transaction());
    let second = DIESEL.iter().nth(1).unwrap();
    assert_eq!(second.down_sql(), None);
    assert_eq!(second.down_path(), None);
    assert!(
        second.no_transaction(),
        "metadata.toml says run_in_transaction = false"
    );
}

/// A project set up with `diesel setup`: its initial-setup folder, a
/// `yyyy-mm-dd_hhmmss_name` folder placed by its date and time, a folder
/// named by its version alone, and comment-only migrations that keep the
/// dialects' versions aligned.
#[test]
fn a_diesel_project_as_it_is() {
    for dialect in Dialect::ALL {
        let set = DIESEL_PROJECT.set(dialect).unwrap();
        let versions: Vec<i64> = set.iter().map(Migration::version).collect();
        assert_eq!(
            versions,
            [
                0,
                202_403_120_900_000_000,
                202_403_131_700_000_000,
                202_403_140_800_000_000
            ],
            "{dialect}"
        );
        let names: Vec<&str> = set.iter().map(Migration::description).collect();
        // PostgreSQL's and MySQL's last folder is named by its version
        // alone, as diesel allows: no description.
        let last = if dialect == Dialect::Sqlite {
            "index names"
        } else {
            ""
        };
        assert_eq!(
            names,
            ["diesel initial setup", "create users", "add flag", last],
            "{dialect}"
        );
    }
    let comments = DIESEL_PROJECT
        .set(Dialect::Sqlite)
        .unwrap()
        .iter()
        .last()
        .unwrap();
    assert!(comments.up_sql().starts_with("-- PostgreSQL only"));
    assert_eq!(
        comments.source_path(),
        "sqlite/2024-03-14-080000_index_names"
    );
    // vaultwarden's folder name for PostgreSQL; the loose script beside
    // diesel's folders is left out, as diesel leaves it.
    let postgres = DIESEL_PROJECT.set(Dialect::Postgres).unwrap();
    assert_eq!(
        postgres.iter().next().unwrap().source_path(),
        "postgresql/00000000000000_diesel_initial_setup"
    );
    assert!(postgres.iter().all(|m| !m.source_path().ends_with(".sql")));
}

/// refinery finds its files in subfolders (`V1-2/`), at any depth.
#[test]
fn refinery_subfolders() {
    assert_eq!(versions(&REFINERY_GROUPS), [1, 2, 3]);
    let paths: Vec<&str> = REFINERY_GROUPS.iter().map(Migration::source_path).collect();
    assert_eq!(
        paths,
        [
            "V1-2/V1__create_a.sql",
            "V1-2/V2__create_b.sql",
            "V3/V3__create_c.sql"
        ]
    );
}

/// sqlx reads the version before the first `_` and strips `.up.sql`: a
/// description may hold dots (docs.rs ships such a pair).
#[test]
fn dots_in_a_description() {
    let migration = DOTTED.iter().next().unwrap();
    assert_eq!(migration.description(), "release status view.sql");
    assert_eq!(migration.down_sql(), Some("DROP VIEW release_status;\n"));
}

/// `U<version>__` is Flyway's undo of the `V` file of its version, and,
/// alone, refinery's unversioned migration.
#[test]
fn the_u_prefix_as_flyway_and_refinery_read_it() {
    assert_eq!(versions(&UNDO_PREFIX), [1, 2, 3]);
    let migrations: Vec<&Migration> = UNDO_PREFIX.iter().collect();
    assert_eq!(migrations[0].source_path(), "V1__create_things.sql");
    assert_eq!(migrations[0].down_sql(), Some("DROP TABLE things;\n"));
    assert_eq!(migrations[1].source_path(), "U2__seed_things.sql");
    assert_eq!(migrations[1].description(), "seed things");
    assert_eq!(migrations[1].down_sql(), None);
}

#[test]
fn multi_dialect_folder() {
    let dialects: Vec<_> = MULTI
        .sets()
        .iter()
        .map(stowage::MigrationSet::dialect)
        .collect();
    assert_eq!(dialects, [Some(Dialect::Postgres), Some(Dialect::Sqlite)]);
    let postgres = MULTI.set(Dialect::Postgres).unwrap();
    assert_eq!(postgres.len(), 2);
    assert!(
        postgres
            .iter()
            .next()
            .unwrap()
            .up_sql()
            .contains("BIGSERIAL")
    );
    assert_eq!(MULTI.set(Dialect::Sqlite).unwrap().len(), 1);
    assert!(MULTI.set(Dialect::MySql).is_none(), "no mysql/ folder");
    assert_eq!(MULTI.len(), 3);
    assert_eq!(MULTI.head(), None, "each dialect has its own head");
    assert_eq!(postgres.head().unwrap().version, 2);
    // A plain folder serves every dialect.
    assert_eq!(SIMPLE.set(Dialect::MySql).unwrap().len(), 2);
    assert_eq!(
        SIMPLE.head().unwrap().chain,
        *SIMPLE.iter().last().unwrap().chain()
    );
}

#[test]
fn crlf_and_bom_do_not_change_checksums() {
    assert!(
        file("fixtures/crlf/1_create_users.sql").contains("\r\n"),
        "the fixture must keep its CRLF"
    );
    assert_eq!(LF.len(), 2);
    for (lf, crlf) in LF.iter().zip(CRLF.iter()) {
        assert_eq!(lf.checksum(), crlf.checksum(), "{}", lf.source_path());
        assert_eq!(lf.chain(), crlf.chain());
        assert_eq!(lf.up_sql(), crlf.up_sql(), "the embedded SQL is normalised");
        assert_eq!(lf.no_transaction(), crlf.no_transaction());
    }
    assert_eq!(LF.head(), CRLF.head());
}

/// The chain of DESIGN.md, computed here independently of stowage.
fn expected_chain(set: &stowage::MigrationSet) -> Vec<[u8; 32]> {
    let mut chain: [u8; 32] = Sha256::digest(b"stowage-chain-v1").into();
    set.iter()
        .map(|m| {
            let mut hasher = Sha256::new();
            hasher.update(chain);
            hasher.update(m.version().to_be_bytes());
            hasher.update(Sha256::digest(m.up_sql().as_bytes()));
            chain = hasher.finalize().into();
            chain
        })
        .collect()
}

fn all() -> [(&'static str, &'static Migrator, &'static Dir<'static>); 13] {
    [
        ("simple", &SIMPLE, &SIMPLE_DIR),
        ("reversible", &REVERSIBLE, &REVERSIBLE_DIR),
        ("refinery", &REFINERY, &REFINERY_DIR),
        ("diesel", &DIESEL, &DIESEL_DIR),
        ("multi", &MULTI, &MULTI_DIR),
        ("lf", &LF, &LF_DIR),
        ("crlf", &CRLF, &CRLF_DIR),
        ("example", &EXAMPLE, &EXAMPLE_DIR),
        ("diesel_project", &DIESEL_PROJECT, &DIESEL_PROJECT_DIR),
        ("undo_prefix", &UNDO_PREFIX, &UNDO_PREFIX_DIR),
        ("refinery_groups", &REFINERY_GROUPS, &REFINERY_GROUPS_DIR),
        ("dotted", &DOTTED, &DOTTED_DIR),
        ("flyway", &FLYWAY, &FLYWAY_DIR),
    ]
}

#[test]
fn compile_time_checksums_match_a_rehash() {
    for (name, migrator, _) in all() {
        for set in migrator.sets() {
            for (migration, chain) in set.iter().zip(expected_chain(set)) {
                let checksum: [u8; 32] = Sha256::digest(migration.up_sql().as_bytes()).into();
                assert_eq!(
                    *migration.checksum(),
                    checksum,
                    "{name}: {}",
                    migration.source_path()
                );
                assert_eq!(
                    *migration.chain(),
                    chain,
                    "{name}: {}",
                    migration.source_path()
                );
            }
        }
    }
}

/// Flyway's `R__` files are repeatable migrations, known by their
/// description; `beforeMigrate.sql` and `<event>__<name>.sql` are callbacks.
#[test]
fn flyway_repeatables_and_callbacks() {
    let set = &FLYWAY.sets()[0];
    assert_eq!(versions(&FLYWAY), [1, 2]);
    assert_eq!(
        set.get(2).unwrap().down_sql(),
        Some(file("fixtures/flyway/v1/U2__first_items.sql").as_str())
    );
    assert_eq!(set.get(2).unwrap().down_path(), Some("U2__first_items.sql"));
    let [repeatable] = set.repeatables() else {
        panic!("{:?}", set.repeatables())
    };
    assert!(repeatable.is_repeatable() && repeatable.version() < 0);
    assert_eq!(repeatable.description(), "item names");
    assert_eq!(repeatable.source_path(), "R__item_names.sql");
    assert_eq!(
        repeatable.up_sql(),
        file("fixtures/flyway/v1/R__item_names.sql")
    );
    let callbacks: Vec<(Event, &str)> = Event::ALL
        .into_iter()
        .flat_map(|event| set.callbacks(event).map(move |c| (event, c.path())))
        .collect();
    assert_eq!(
        callbacks,
        [
            (Event::BeforeMigrate, "beforeMigrate.sql"),
            (Event::BeforeEachMigrate, "beforeEachMigrate.sql"),
            (Event::AfterEachMigrate, "afterEachMigrate__count.sql"),
            (Event::AfterMigrate, "afterMigrate.sql"),
        ]
    );
}

#[test]
fn from_dir_builds_the_same_model() {
    for (name, migrator, dir) in all() {
        let from_dir = Migrator::from_dir(dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_dir.sets(), migrator.sets(), "{name}");
        assert!(!from_dir.is_empty());
    }
}

#[test]
fn from_dir_reports_every_problem() {
    let error = Migrator::from_dir(&BROKEN_DIR).unwrap_err();
    let stowage::Error::InvalidSource { problems } = &error else {
        panic!("{error}")
    };
    assert_eq!(problems.len(), 4, "{problems:#?}");
    let message = error.to_string();
    for file in ["1_a.sql", "1_b.sql", "2_c.up.sql", "notes.sql"] {
        assert!(message.contains(file), "{message}");
    }
}

#[test]
fn example_migrations_cover_every_dialect() {
    for dialect in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
        let set = EXAMPLE.set(dialect).unwrap();
        assert_eq!(set.dialect(), Some(dialect));
        assert!(
            set.iter().all(|m| m.down_sql().is_some()),
            "{dialect}: the example is reversible"
        );
    }
    assert!(
        EXAMPLE.stale_files().is_empty(),
        "{:?}",
        EXAMPLE.stale_files()
    );
}
