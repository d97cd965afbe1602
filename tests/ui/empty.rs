static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/empty");

fn main() {
    let _ = MIGRATOR.len();
}
