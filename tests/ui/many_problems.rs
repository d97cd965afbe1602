static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/many_problems");

fn main() {
    let _ = MIGRATOR.len();
}
