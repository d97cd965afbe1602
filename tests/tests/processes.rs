//! Separate processes against one database: 16 replicas starting at once,
//! and a process killed in the middle of a migration.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stowage_tests::{Backend, Fresh, fresh};

const APP: &str = env!("CARGO_BIN_EXE_stowage-test-app");

fn spawn(db: &Fresh, set: &str, lock_timeout_secs: u64) -> Child {
    Command::new(APP)
        .args([&db.url, set, &lock_timeout_secs.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn sixteen_replicas_at_once(backend: Backend) {
    let db = fresh(backend, "replicas").await;
    let children: Vec<Child> = (0..16).map(|_| spawn(&db, "v2", 120)).collect();
    let mut applied = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{backend:?}: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        let versions = stdout.trim().strip_prefix("applied=").unwrap();
        applied.extend(
            versions
                .split(',')
                .filter(|v| !v.is_empty())
                .map(|v| v.parse::<i64>().unwrap()),
        );
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        [1, 2, 3, 4],
        "{backend:?}: every migration applied exactly once"
    );
    let pool = db.pool().await;
    let history = pool.history().await;
    assert_eq!(
        history
            .iter()
            .map(|(v, s, _)| (*v, s.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, "applied"),
            (2, "applied"),
            (3, "applied"),
            (4, "applied")
        ]
    );
    assert_eq!(
        pool.i64("SELECT COUNT(*) FROM users").await,
        2,
        "the seed ran once"
    );
}

/// SIGKILL the process in the middle of its long migration. A server does
/// not notice a dead client until it next writes to it, and would finish the
/// migration's batch on its own; ending the session on the server too is
/// what a crash of the whole host (or a network cut) does.
async fn killed_in_the_middle(backend: Backend) {
    let db = fresh(backend, "crash").await;
    let pool = db.pool().await;
    let mut child = spawn(&db, "slow", 60);
    let running = match backend {
        Backend::Postgres => {
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND datname = current_database() AND pid <> pg_backend_pid()"
        }
        Backend::MySql => {
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(4)%' AND DB = DATABASE() AND ID <> CONNECTION_ID()"
        }
        Backend::Sqlite => "SELECT 1",
    };
    let started = Instant::now();
    while pool.i64(running).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slow migration never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if backend == Backend::Sqlite {
        // The writer hides its work until it commits: give it time to start.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "{backend:?}: the process was killed before it finished"
    );
    match backend {
        Backend::Postgres => pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND datname = current_database() AND pid <> pg_backend_pid()",
        ).await,
        Backend::MySql => {
            let id = pool.i64("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(4)%' AND DB = DATABASE() AND ID <> CONNECTION_ID()").await;
            pool.execute(&format!("KILL CONNECTION {id}")).await;
        }
        Backend::Sqlite => {}
    }

    // The next run must not wait for a lock held by the dead process.
    let run = Instant::now();
    let rerun = spawn(&db, "slow", 30).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&rerun.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&rerun.stderr).into_owned();
    match backend {
        Backend::MySql => {
            // DDL committed as it went: the failed row says which statements
            // are applied for certain (progress is written before each
            // statement that commits implicitly, which makes it durable).
            assert!(!rerun.status.success(), "{stdout}");
            assert!(
                stderr.contains(
                    "migration 2 (slow) failed in an earlier run without finishing (its process \
                     ended): statement 1 may be applied, none after it"
                ),
                "{stderr}"
            );
            assert_eq!(pool.history().await[1], (2, "failed".to_owned(), Some(0)));
            assert!(
                !pool.tables().await.contains(&"slow_finished".to_owned()),
                "none after it"
            );
            assert!(run.elapsed() < Duration::from_secs(10), "the lock was free");
        }
        Backend::Postgres => {
            assert!(rerun.status.success(), "{stderr}");
            assert_eq!(
                stdout.trim(),
                "applied=2",
                "the killed migration left nothing behind"
            );
        }
        Backend::Sqlite => {
            // The whole run is one write transaction: the hot journal rolled it back.
            assert!(rerun.status.success(), "{stderr}");
            assert_eq!(stdout.trim(), "applied=1,2");
        }
    }
    if backend != Backend::MySql {
        let tables = pool.tables().await;
        assert!(tables.contains(&"slow_finished".to_owned()), "{tables:?}");
        assert_eq!(pool.history().await.len(), 2);
    }
}

stowage_tests::on_every_backend!(sixteen_replicas_at_once, killed_in_the_middle);
