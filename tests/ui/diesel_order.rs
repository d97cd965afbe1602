static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/diesel_order");

fn main() {
    let _ = MIGRATOR.len();
}
