//! `#[stowage::test]`: wrap an async test function so that it receives a
//! fresh, migrated database.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn, LitStr, Path};

/// Where the test's migrations come from.
enum Source {
    /// `migrator = "path::MIGRATOR"`.
    Migrator(Path),
    /// `migrations = "dir"`, or `./migrations` by default.
    Folder(Option<LitStr>),
}

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut migrator: Option<Path> = None;
    let mut migrations: Option<LitStr> = None;
    let mut server: Option<LitStr> = None;
    let mut krate: Option<Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("migrator") {
            let lit: LitStr = meta.value()?.parse()?;
            migrator = Some(lit.parse()?);
            Ok(())
        } else if meta.path.is_ident("migrations") {
            migrations = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("server") {
            server = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("crate") {
            let lit: LitStr = meta.value()?.parse()?;
            krate = Some(lit.parse()?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown option; use `migrator = \"path::TO::MIGRATOR\"`, `migrations = \"dir\"`, \
                 `server = \"ENV_VAR\"` or `crate = \"path::to::stowage\"`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    let krate = match krate {
        Some(path) => quote!(#path),
        None => crate::krate::from_manifest(),
    };
    let source = match (migrator, migrations) {
        (Some(_), Some(lit)) => {
            return Err(syn::Error::new(
                lit.span(),
                "give `migrator` or `migrations`, not both",
            ));
        }
        (Some(path), None) => Source::Migrator(path),
        (None, folder) => Source::Folder(folder),
    };

    let mut function: ItemFn = syn::parse2(item)?;
    if function.sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            function.sig.fn_token,
            "#[stowage::test] functions are `async fn`",
        ));
    }
    // The argument's type as tokens: syn's `Clone` impls are a feature this
    // crate does not ask for.
    let ty = match function.sig.inputs.iter().collect::<Vec<_>>().as_slice() {
        [FnArg::Typed(argument)] => {
            let ty = &argument.ty;
            quote!(#ty)
        }
        _ => {
            return Err(syn::Error::new_spanned(
                &function.sig.inputs,
                "#[stowage::test] functions take one argument: a PgPool, MySqlPool, SqlitePool, AnyPool or stowage::testing::TestDb",
            ));
        }
    };
    let name = function.sig.ident.clone();
    // The attributes and visibility go on the wrapper; the function itself
    // becomes a plain inner item.
    let attrs = std::mem::take(&mut function.attrs);
    let vis = std::mem::replace(&mut function.vis, syn::Visibility::Inherited);
    let (migrator_item, migrator_path) = match source {
        Source::Migrator(path) => (quote!(), quote!(#path)),
        Source::Folder(folder) => (
            quote! {
                static STOWAGE_TEST_MIGRATOR: #krate::Migrator = #krate::embed_migrations!(#folder);
            },
            quote!(STOWAGE_TEST_MIGRATOR),
        ),
    };
    let server = match server {
        Some(var) => quote!(::core::option::Option::Some(#var)),
        None => quote!(::core::option::Option::None),
    };
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() {
            #migrator_item
            #function
            #krate::__private::testing::run::<#ty, _, _>(&#migrator_path, #server, #name)
        }
    })
}
