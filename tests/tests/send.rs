//! Every operation can run inside `tokio::spawn`: the futures of async blocks
//! that await them are `Send`. (A future type naming a trait's lifetime
//! breaks this, rust-lang/rust#100013; this file keeps it from coming back.)

use stowage::{Migrator, RepairAction, Target};

static MIGRATOR: Migrator = stowage::embed_migrations!("fixtures/operate");

fn assert_send<T: Send>(_: T) {}

#[tokio::test]
async fn operations_can_be_spawned() {
    // A lazy pool never connects: only the futures' types matter here.
    let pg = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
    let p = pg.clone();
    assert_send(async move { MIGRATOR.run(&p).await });
    let p = pg.clone();
    assert_send(async move { MIGRATOR.run_to(&p, 1).await });
    let p = pg.clone();
    assert_send(async move { MIGRATOR.undo(&p, Target::Base).await });
    let p = pg.clone();
    assert_send(async move { MIGRATOR.stamp(&p, Target::Head).await });
    let p = pg.clone();
    assert_send(async move { MIGRATOR.status(&p).await });
    let p = pg.clone();
    assert_send(async move { MIGRATOR.verify(&p).await });
    let p = pg.clone();
    assert_send(async move { MIGRATOR.plan(&p, Target::Head).await });
    let p = pg.clone();
    assert_send(async move { MIGRATOR.repair(&p, RepairAction::AcceptChecksums).await });
    assert_send(async move {
        let mut conn =
            <sqlx::PgConnection as sqlx::Connection>::connect("postgres://nobody@127.0.0.1:1/none")
                .await?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))
    });
    assert_send(async { stowage::connect::<sqlx::Postgres>("postgres://x@127.0.0.1:1/x").await });
    assert_send(async {
        let db = stowage::testing::TestDb::on("sqlite://", &MIGRATOR).await?;
        db.pool::<sqlx::Any>().await
    });
    // And one really spawned, on SQLite.
    sqlx::any::install_default_drivers();
    let path = std::env::temp_dir().join(format!("stowage-send-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let report = tokio::spawn(async move {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        MIGRATOR.run(&pool).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.applied().len(), 4);
    std::fs::remove_file(path).unwrap();
}
