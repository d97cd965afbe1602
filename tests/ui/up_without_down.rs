static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/up_without_down");

fn main() {
    let _ = MIGRATOR.len();
}
