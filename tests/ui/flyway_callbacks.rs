static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/flyway_callbacks");

fn main() {
    let _ = MIGRATOR.len();
}
