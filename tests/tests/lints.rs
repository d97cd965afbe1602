//! The code `embed_migrations!` generates compiles clean under the strictest
//! lints a user crate may set (clippy runs over this file in CI).
#![deny(
    warnings,
    clippy::pedantic,
    clippy::nursery,
    missing_docs,
    unused_qualifications
)]

/// Every layout at once, through each kind of generated expression.
pub static EXAMPLE: stowage::Migrator = stowage::embed_migrations!("../examples/todo/migrations");
/// A normalised (CRLF, BOM) folder, whose SQL is embedded as a literal.
pub static CRLF: stowage::Migrator = stowage::embed_migrations!("fixtures/crlf");
/// Diesel folders.
pub static DIESEL: stowage::Migrator = stowage::embed_migrations!("fixtures/diesel");

#[test]
fn generated_code_is_lint_clean() {
    assert_eq!(EXAMPLE.sets().len(), 3);
    assert_eq!(CRLF.len(), 2);
    assert_eq!(DIESEL.len(), 2);
}
