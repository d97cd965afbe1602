static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/non_utf8");

fn main() {
    let _ = MIGRATOR.len();
}
