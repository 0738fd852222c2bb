//! `#[derive(Typed)]`: the validator of a struct or enum, following the `#[serde(...)]` attributes
//! that decide its wire shape, so the type and what clients are told about it cannot drift apart.
//! See `values::typed` for the attributes and the mapping.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{quote, ToTokens};
use syn::meta::ParseNestedMeta;
use syn::{
    parse_macro_input, parse_quote, Attribute, Data, DeriveInput, Expr, Fields, GenericParam,
    LitStr, Type,
};

#[proc_macro_derive(Typed, attributes(typed))]
pub fn derive_typed(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What the container's `#[serde]` and `#[typed]` attributes say.
#[derive(Default)]
struct Container {
    rename_all: Option<String>,
    tag: Option<String>,
    untagged: bool,
    session: bool,
    table: Option<String>,
}

/// What a field's or variant's attributes say.
#[derive(Default)]
struct Member {
    rename: Option<String>,
    skip: bool,
    flatten: bool,
    id: Option<String>,
    validator: Option<Expr>,
}

/// Reads and discards a nested meta's value (`= ...` or `(...)`) that this derive does not need.
fn ignore(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        let _: Tokens = content.parse()?;
    }
    Ok(())
}

fn string(meta: &ParseNestedMeta<'_>) -> syn::Result<String> {
    if meta.input.peek(syn::token::Paren) {
        return Err(meta.error("rename(serialize = ..., deserialize = ...) is not supported by Typed: the wire shape must be one"));
    }
    Ok(meta.value()?.parse::<LitStr>()?.value())
}

fn container(attrs: &[Attribute]) -> syn::Result<Container> {
    let mut c = Container::default();
    for attr in attrs {
        if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    c.rename_all = Some(string(&meta)?);
                } else if meta.path.is_ident("tag") {
                    c.tag = Some(string(&meta)?);
                } else if meta.path.is_ident("untagged") {
                    c.untagged = true;
                } else if meta.path.is_ident("content") || meta.path.is_ident("transparent") {
                    return Err(meta.error("not supported by Typed"));
                } else {
                    ignore(&meta)?;
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("typed") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("session") {
                    c.session = true;
                    Ok(())
                } else if meta.path.is_ident("table") {
                    c.table = Some(string(&meta)?);
                    Ok(())
                } else {
                    Err(meta.error("expected #[typed(session)] or #[typed(table = \"name\")]"))
                }
            })?;
        }
    }
    Ok(c)
}

fn member(attrs: &[Attribute]) -> syn::Result<Member> {
    let mut m = Member::default();
    for attr in attrs {
        if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    m.rename = Some(string(&meta)?);
                } else if meta.path.is_ident("skip") {
                    m.skip = true;
                } else if meta.path.is_ident("flatten") {
                    m.flatten = true;
                } else if meta.path.is_ident("alias") {
                    // Accepted on input only; the validator describes the canonical name.
                    ignore(&meta)?;
                } else {
                    ignore(&meta)?;
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("typed") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("id") {
                    m.id = Some(string(&meta)?);
                } else if meta.path.is_ident("validator") {
                    m.validator = Some(meta.value()?.parse()?);
                } else {
                    return Err(meta
                        .error("expected #[typed(id = \"table\")] or #[typed(validator = expr)]"));
                }
                Ok(())
            })?;
        }
    }
    Ok(m)
}

/// Splits a Rust name into lower-case words: `first_name` and `FirstName` both give
/// `["first", "name"]`.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for ch in name.chars() {
        if ch == '_' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        } else if ch.is_uppercase() && !current.is_empty() {
            words.push(std::mem::take(&mut current));
            current.extend(ch.to_lowercase());
        } else {
            current.extend(ch.to_lowercase());
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The wire name serde gives `name` under `rename_all = rule`.
fn renamed(name: &str, rule: Option<&str>, is_variant: bool) -> syn::Result<String> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    let w = words(name);
    Ok(match rule {
        None => name.to_owned(),
        Some("lowercase") if is_variant => name.to_lowercase(),
        Some("lowercase") => name.to_owned(),
        Some("UPPERCASE") => name.to_uppercase(),
        Some("snake_case") => w.join("_"),
        Some("SCREAMING_SNAKE_CASE") => w.join("_").to_uppercase(),
        Some("kebab-case") => w.join("-"),
        Some("SCREAMING-KEBAB-CASE") => w.join("-").to_uppercase(),
        Some("camelCase") => w
            .iter()
            .enumerate()
            .map(|(i, word)| {
                if i == 0 {
                    word.clone()
                } else {
                    capitalized(word)
                }
            })
            .collect(),
        Some("PascalCase") => w.iter().map(|word| capitalized(word)).collect(),
        Some(other) => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("rename_all = {other:?} is not supported by Typed"),
            ))
        }
    })
}

/// Statements adding the named fields to `fields` (a `BTreeMap<String, FieldValidator>`).
fn object_fields(named: &syn::FieldsNamed, rule: Option<&str>) -> syn::Result<Tokens> {
    let mut out = Tokens::new();
    for field in &named.named {
        let m = member(&field.attrs)?;
        if m.skip {
            continue;
        }
        let ty = &field.ty;
        if m.flatten {
            let shown = ty.to_token_stream().to_string();
            out.extend(quote! {
                ::values::typed::derive::flatten(&mut fields, <#ty as ::values::Typed>::validator(), #shown);
            });
            continue;
        }
        let ident = field.ident.as_ref().expect("named field").to_string();
        let name = match m.rename {
            Some(name) => name,
            None => renamed(&ident, rule, false)?,
        };
        let mut value = match m.validator {
            Some(expr) => quote! { ::values::typed::derive::given::<#ty>(#expr) },
            None => quote! { <#ty as ::values::Typed>::field() },
        };
        if let Some(table) = m.id {
            value = quote! { ::values::typed::derive::as_id(#value, #table) };
        }
        out.extend(quote! { fields.insert(#name.to_owned(), #value); });
    }
    Ok(out)
}

fn single_field_type(fields: &Fields) -> Option<&Type> {
    match fields {
        Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => Some(&unnamed.unnamed[0].ty),
        _ => None,
    }
}

fn expand(input: DeriveInput) -> syn::Result<Tokens> {
    let c = container(&input.attrs)?;
    let rule = c.rename_all.as_deref();
    let body = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => {
                let inserts = object_fields(named, rule)?;
                let session = c
                    .session
                    .then(|| quote! { ::values::typed::derive::session(&mut fields); });
                quote! {
                    let mut fields = ::std::collections::BTreeMap::new();
                    #inserts
                    #session
                    ::values::Validator::Object(fields)
                }
            }
            Fields::Unnamed(_) => match single_field_type(&data.fields) {
                Some(ty) => quote! { <#ty as ::values::Typed>::validator() },
                None => {
                    return Err(syn::Error::new_spanned(
                        &input.ident,
                        "Typed supports named structs, newtypes and enums",
                    ))
                }
            },
            Fields::Unit => quote! { ::values::validator::v::null() },
        },
        Data::Enum(data) => {
            let mut members = Vec::new();
            for variant in &data.variants {
                let m = member(&variant.attrs)?;
                if m.skip {
                    continue;
                }
                let name = match m.rename {
                    Some(name) => name,
                    None => renamed(&variant.ident.to_string(), rule, true)?,
                };
                let member = match (&variant.fields, &c.tag, c.untagged) {
                    (Fields::Unit, _, true) => quote! { ::values::validator::v::null() },
                    (Fields::Unit, None, false) => {
                        quote! { ::values::typed::derive::literal(#name) }
                    }
                    (fields, _, true) => match single_field_type(fields) {
                        Some(ty) => quote! { <#ty as ::values::Typed>::validator() },
                        None => match fields {
                            Fields::Named(named) => {
                                let inserts = object_fields(named, None)?;
                                quote! {{
                                    let mut fields = ::std::collections::BTreeMap::new();
                                    #inserts
                                    ::values::Validator::Object(fields)
                                }}
                            }
                            _ => {
                                return Err(syn::Error::new_spanned(
                                    variant,
                                    "Typed supports untagged variants with one field or named fields",
                                ))
                            }
                        },
                    },
                    (fields, Some(tag), false) => {
                        let inserts = match fields {
                            Fields::Named(named) => object_fields(named, None)?,
                            Fields::Unit => Tokens::new(),
                            _ => match single_field_type(fields) {
                                Some(ty) => {
                                    let shown = ty.to_token_stream().to_string();
                                    quote! { ::values::typed::derive::flatten(&mut fields, <#ty as ::values::Typed>::validator(), #shown); }
                                }
                                None => {
                                    return Err(syn::Error::new_spanned(
                                        variant,
                                        "Typed does not support tuple variants",
                                    ))
                                }
                            },
                        };
                        quote! {{
                            let mut fields = ::std::collections::BTreeMap::new();
                            #inserts
                            fields.insert(#tag.to_owned(), ::values::typed::derive::literal(#name).into());
                            ::values::Validator::Object(fields)
                        }}
                    }
                    (_, None, false) => {
                        return Err(syn::Error::new_spanned(
                            variant,
                            "Typed supports externally tagged enums of unit variants only; use #[serde(tag = \"...\")] or #[serde(untagged)] for variants with data",
                        ))
                    }
                };
                members.push(member);
            }
            quote! { ::values::Validator::Union(::std::vec![#(#members),*]) }
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "Typed does not support unions",
            ))
        }
    };

    let mut generics = input.generics.clone();
    for param in &mut generics.params {
        if let GenericParam::Type(param) = param {
            param.bounds.push(parse_quote!(::values::Typed));
        }
    }
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let ident = &input.ident;
    let table = c.table.map(|name| {
        quote! {
            impl #impl_generics ::values::Table for #ident #ty_generics #where_clause {
                const NAME: &'static str = #name;
            }
        }
    });
    Ok(quote! {
        impl #impl_generics ::values::Typed for #ident #ty_generics #where_clause {
            fn validator() -> ::values::Validator {
                #body
            }
        }
        #table
    })
}
