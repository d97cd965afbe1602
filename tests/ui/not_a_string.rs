static MIGRATOR: stowage::Migrator = stowage::embed_migrations!(migrations);

fn main() {
    let _ = MIGRATOR.len();
}
