static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/diesel_without_up");

fn main() {
    let _ = MIGRATOR.len();
}
