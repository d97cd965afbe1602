//! What can be checked of the image without a Docker engine: the final stage
//! is an empty image holding the binary alone, and the Compose file runs the
//! one-shot `migrate` job between a healthy database and the app. (That the
//! binary needs no migration files is shown by `e2e.rs`.)

fn file(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn the_final_stage_is_scratch_with_the_binary_alone() {
    let dockerfile = file("Dockerfile");
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    let named = |name: &str| {
        stages
            .iter()
            .find(|s| {
                s.lines()
                    .next()
                    .is_some_and(|l| l.ends_with(&format!(" AS {name}")))
            })
            .unwrap_or_else(|| panic!("stage {name}"))
    };
    // The binary comes from the full build by default, or from outside.
    assert!(dockerfile.contains("\nARG DIST=compiled\n"), "{dockerfile}");
    assert!(
        named("build").contains("-p todo --target x86_64-unknown-linux-musl"),
        "a static binary"
    );
    assert!(named("compiled").starts_with("scratch AS compiled"));
    let prebuilt = named("prebuilt");
    assert!(
        prebuilt.contains("COPY todo /todo\nCOPY data/ /data/"),
        "{prebuilt}"
    );
    assert!(named("dist").starts_with("${DIST} AS dist"));
    let last = stages.last().unwrap();
    assert!(last.starts_with("scratch\n"), "{last}");
    let copies: Vec<&str> = last.lines().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(
        copies,
        [
            "COPY --from=dist /todo /todo",
            "COPY --from=dist --chown=65532:65532 /data /data"
        ]
    );
    assert!(
        !last.to_lowercase().contains("migrations"),
        "no migration files in the image"
    );
    assert!(last.contains("ENTRYPOINT [\"/todo\"]"));
}

#[test]
fn compose_runs_migrate_between_a_healthy_database_and_the_app() {
    let compose = file("compose.yaml");
    // The text of each service: from its `  name:` line to the next one.
    let mut services: Vec<(String, String)> = Vec::new();
    for line in compose.lines().skip_while(|l| *l != "services:").skip(1) {
        if !line.starts_with(' ') && !line.is_empty() {
            break;
        }
        if line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':') {
            services.push((line.trim().trim_end_matches(':').to_owned(), String::new()));
        } else if let Some((_, text)) = services.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    let service = |name: &str| {
        services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("service {name}"))
    };
    let db = service("db");
    assert!(
        db.contains("healthcheck:") && db.contains("pg_isready"),
        "{db}"
    );
    let migrate = service("migrate");
    assert!(
        migrate.contains("command: [\"migrate\", \"up\"]"),
        "{migrate}"
    );
    assert!(
        migrate.contains("db:\n        condition: service_healthy"),
        "{migrate}"
    );
    let app = service("app");
    assert!(
        app.contains("migrate:\n        condition: service_completed_successfully"),
        "{app}"
    );
    // Secrets, not passwords in the environment: the job and the app read
    // the URL from a mounted file, the database its password from another,
    // and the two files agree.
    assert!(!compose.contains("POSTGRES_PASSWORD:"), "{compose}");
    assert!(!compose.contains("DATABASE_URL:"), "{compose}");
    assert!(
        db.contains("POSTGRES_PASSWORD_FILE: /run/secrets/db_password"),
        "{db}"
    );
    for text in [&migrate, &app] {
        assert!(
            text.contains("DATABASE_URL_FILE: /run/secrets/database_url")
                && text.contains("secrets: [database_url]"),
            "{text}"
        );
    }
    let password = file("secrets/db_password");
    let url = file("secrets/database_url");
    assert!(
        url.trim()
            .starts_with(&format!("postgres://todo:{}@db:5432/todo", password.trim())),
        "{url}"
    );
}
