//! The token pass: turn the validated model into a `const` `Migrator` expression.

use crate::read::{self, Folder};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use stowage_layout::{self as layout, Parsed, Set, SqlFile};
use syn::LitStr;

pub fn embed_migrations(input: TokenStream) -> syn::Result<TokenStream> {
    let (krate, input) = crate::krate::split(input);
    let (shown, span) = if input.is_empty() {
        (read::DEFAULT_DIR.to_owned(), Span::call_site())
    } else {
        let lit: LitStr = syn::parse2(input)?;
        (lit.value(), lit.span())
    };
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok();
    let dir =
        read::resolve_dir(&shown, manifest_dir.as_deref()).map_err(|m| syn::Error::new(span, m))?;
    let folder = read::read_folder(&shown, &dir).map_err(|m| syn::Error::new(span, m))?;
    let sets = layout::classify(&folder.entries).map_err(|problems| {
        let mut errors = problems
            .iter()
            .map(|problem| syn::Error::new(span, format!("{shown}/{problem}")));
        let mut first = errors
            .next()
            .unwrap_or_else(|| syn::Error::new(span, "invalid migrations folder"));
        for error in errors {
            first.combine(error);
        }
        first
    })?;
    Ok(migrator(&krate, &folder, &sets))
}

fn migrator(krate: &TokenStream, folder: &Folder, sets: &[Set]) -> TokenStream {
    let sets = sets.iter().map(|set| {
        let dialect = match set.dialect {
            // The variant's own name, as `Debug` prints it.
            Some(dialect) => {
                let variant = format_ident!("{dialect:?}");
                quote!(::core::option::Option::Some(#krate::Dialect::#variant))
            }
            None => quote!(::core::option::Option::None),
        };
        let migrations = set.migrations.iter().map(|m| migration(krate, folder, m));
        let repeatables = set.repeatables.iter().map(|m| migration(krate, folder, m));
        let callbacks = set.callbacks.iter().map(|callback| {
            let event = format_ident!("{}", format!("{:?}", callback.event));
            let path = &callback.file.path;
            let text = sql(folder, &callback.file);
            quote!(#krate::__private::CallbackFile::embedded(
                #krate::Event::#event, #path, #text,
            ))
        });
        // `const` items, because only their initialisers may borrow arrays of
        // values that have destructors.
        quote!({
            const MIGRATIONS: &[#krate::__private::Migration] = &[#(#migrations),*];
            const REPEATABLES: &[#krate::__private::Migration] = &[#(#repeatables),*];
            const CALLBACKS: &[#krate::__private::CallbackFile] = &[#(#callbacks),*];
            #krate::__private::MigrationSet::embedded(#dialect, MIGRATIONS, REPEATABLES, CALLBACKS)
        })
    });
    let root = folder.root.to_string_lossy().into_owned();
    let files = &folder.files;
    // The schema snapshots beside the migrations, for `Migrator::drift`.
    let snapshots = layout::Dialect::ALL.iter().filter_map(|dialect| {
        let name = format!("schema.{}.snapshot", dialect.folder());
        folder.files.contains(&name).then(|| {
            let path = folder.root.join(&name).to_string_lossy().into_owned();
            quote!(::std::borrow::Cow::Borrowed(::core::include_str!(#path)))
        })
    });
    quote!({
        const SETS: &[#krate::__private::MigrationSet] = &[#(#sets),*];
        const SNAPSHOTS: &[::std::borrow::Cow<'static, ::core::primitive::str>] = &[#(#snapshots),*];
        #krate::__private::Migrator::embedded(
            SETS,
            #krate::__private::Source::embedded(
                if ::core::cfg!(debug_assertions) {
                    ::core::option::Option::Some(#root)
                } else {
                    ::core::option::Option::None
                },
                &[#(#files),*],
            ),
            SNAPSHOTS,
        )
    })
}

fn migration(krate: &TokenStream, folder: &Folder, m: &Parsed) -> TokenStream {
    let Parsed {
        version,
        description,
        source,
        no_transaction,
        compatible,
        checksum,
        chain,
        ..
    } = m;
    let up = sql(folder, &m.up);
    let down = match &m.down {
        Some(down) => {
            let (path, sql) = (&down.path, sql(folder, down));
            quote!(::core::option::Option::Some((#path, #sql)))
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #krate::__private::Migration::embedded(
            #version, #description, #source, #up, #down, [#(#checksum),*], [#(#chain),*], #no_transaction,
            #compatible,
        )
    }
}

/// The SQL text: `include_str!` of the file, so editing it rebuilds the crate.
/// A file that normalisation changes is embedded as its normalised text, still
/// tracked through an unused `include_str!`.
fn sql(folder: &Folder, file: &SqlFile) -> TokenStream {
    let path = folder.root.join(&file.path).to_string_lossy().into_owned();
    if file.normalised {
        let text = &file.text;
        quote!({
            const _: &::core::primitive::str = ::core::include_str!(#path);
            #text
        })
    } else {
        quote!(::core::include_str!(#path))
    }
}
