static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/fixtures/objects");

#[stowage::test(migrator = "MIGRATOR", migrations = "../../../../tests/fixtures/objects")]
async fn both(pool: sqlx::AnyPool) {
    drop(pool);
}

fn main() {}
