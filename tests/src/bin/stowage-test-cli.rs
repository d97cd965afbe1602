//! An application without clap that hands its command line to
//! `stowage::cli::main`. `STOWAGE_TEST_SET=slow` embeds a six-second
//! PostgreSQL migration instead of the operate set; `STOWAGE_TEST_TRACING=1`
//! installs a `tracing` subscriber at `warn` on stderr first, as an
//! application with logging does.

static MIGRATOR: stowage::Migrator = stowage::embed_migrations!("fixtures/operate");
static SLOW: stowage::Migrator = stowage::embed_migrations!("fixtures/cli/slow");

fn main() {
    if std::env::var_os("STOWAGE_TEST_TRACING").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    match std::env::var("STOWAGE_TEST_SET").as_deref() {
        Ok("slow") => stowage::cli::main(&SLOW),
        _ => stowage::cli::main(&MIGRATOR),
    }
}
