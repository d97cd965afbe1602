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
    assert_eq!(stages.len(), 2, "a build stage and a final stage");
    let last = stages[1];
    assert!(last.starts_with("scratch\n"), "{last}");
    let copies: Vec<&str> = last.lines().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(
        copies,
        [
            "COPY --from=build /todo /todo",
            "COPY --from=build --chown=65532:65532 /data /data"
        ]
    );
    assert!(
        !last.to_lowercase().contains("migrations"),
        "no migration files in the image"
    );
    assert!(last.contains("ENTRYPOINT [\"/todo\"]"));
    assert!(
        stages[0].contains("-p todo --target x86_64-unknown-linux-musl"),
        "a static binary"
    );
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
}
