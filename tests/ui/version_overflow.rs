static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/version_overflow");

fn main() {
    let _ = MIGRATOR.len();
}
