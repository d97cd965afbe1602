static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("../../../../tests/ui/fixtures/not_a_folder.sql");

fn main() {
    let _ = MIGRATOR.len();
}
