//! The path by which generated code names the runtime crate, which an
//! application may have renamed (`migrations = { package = "stowage-migrate" }`).

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::quote;

/// The runtime's package on the registry.
const PACKAGE: &str = "stowage-migrate";

/// `stowage::embed_migrations!` hands the procedural macro `[$crate]` before
/// its own input: that path, and the rest. Without it (the procedural macro
/// called directly), the path the manifest gives.
pub fn split(input: TokenStream) -> (TokenStream, TokenStream) {
    let mut tokens = input.clone().into_iter();
    match tokens.next() {
        Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Bracket => {
            (group.stream(), tokens.collect())
        }
        _ => (from_manifest(), input),
    }
}

/// The runtime crate as the compiling crate's `Cargo.toml` names it: the key
/// of the dependency whose `package` is `stowage-migrate`, or `stowage`, the
/// crate's own name, when it is not renamed (or the manifest cannot be read).
pub fn from_manifest() -> TokenStream {
    let name = std::env::var("CARGO_MANIFEST_DIR")
        .ok()
        .and_then(|dir| std::fs::read_to_string(std::path::Path::new(&dir).join("Cargo.toml")).ok())
        .and_then(|text| renamed(&text))
        .unwrap_or_else(|| "stowage".to_owned());
    let ident = proc_macro2::Ident::new(&name, proc_macro2::Span::call_site());
    quote!(::#ident)
}

/// The name a manifest gives the runtime under `package = "stowage-migrate"`,
/// in any of its dependency tables (target-specific ones included).
fn renamed(manifest: &str) -> Option<String> {
    let manifest: toml::Table = manifest.parse().ok()?;
    let mut holders = vec![&manifest];
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        holders.extend(targets.values().filter_map(toml::Value::as_table));
    }
    let tables = holders.into_iter().flat_map(|holder| {
        ["dependencies", "dev-dependencies", "build-dependencies"]
            .into_iter()
            .filter_map(|kind| holder.get(kind).and_then(toml::Value::as_table))
    });
    tables
        .flat_map(|table| table.iter())
        .find_map(|(key, value)| {
            let package = value.as_table()?.get("package")?.as_str()?;
            (package == PACKAGE).then(|| key.replace('-', "_"))
        })
}

#[cfg(test)]
mod tests {
    use super::renamed;

    #[test]
    fn finds_the_renamed_dependency_in_any_table() {
        assert_eq!(
            renamed(
                "[dependencies]\nmigrations = { package = \"stowage-migrate\", version = \"0.1\" }\n"
            ),
            Some("migrations".to_owned())
        );
        assert_eq!(
            renamed(
                "[target.'cfg(unix)'.dev-dependencies]\nmy-db = { package = \"stowage-migrate\" }\n"
            ),
            Some("my_db".to_owned())
        );
        assert_eq!(renamed("[dependencies]\nstowage-migrate = \"0.1\"\n"), None);
        assert_eq!(
            renamed("[dependencies]\nother = { package = \"stowage\" }\n"),
            None
        );
        assert_eq!(renamed("not toml ["), None);
    }
}
