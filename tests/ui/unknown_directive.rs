static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/unknown_directive");

fn main() {
    let _ = MIGRATOR.len();
}
