static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("/srv/app/migrations");

fn main() {
    let _ = MIGRATOR.len();
}
