//! An application without clap that hands its command line to
//! `stowage::cli::main`.

static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("fixtures/operate");

fn main() {
    stowage::cli::main(&MIGRATOR)
}
