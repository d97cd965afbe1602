//! Procedural macros of [stowage-migrate](https://docs.rs/stowage-migrate).
//! Depend on `stowage-migrate`, which re-exports them; this crate's API is
//! not stable on its own.

mod expand;
mod krate;
mod read;
mod test_attr;

use proc_macro::TokenStream;

/// See `stowage::embed_migrations!`.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    expand::embed_migrations(input.into())
        .unwrap_or_else(|errors| {
            // Several `compile_error!`s only parse as an expression inside a block.
            let errors = errors.into_compile_error();
            quote::quote!({ #errors })
        })
        .into()
}

/// See `stowage::test`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
