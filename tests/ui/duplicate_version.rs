static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/duplicate_version");

fn main() {
    let _ = MIGRATOR.len();
}
