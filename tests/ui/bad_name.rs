static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/bad_name");

fn main() {
    let _ = MIGRATOR.len();
}
