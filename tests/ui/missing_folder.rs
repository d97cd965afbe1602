static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/does_not_exist");

fn main() {
    let _ = MIGRATOR.len();
}
