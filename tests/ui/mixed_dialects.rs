static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/mixed_dialects");

fn main() {
    let _ = MIGRATOR.len();
}
