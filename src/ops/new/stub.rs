//! The Rust source of a new crate: a `src/lib.rs` or `src/main.rs` that implements each export
//! of its world with a `todo!()` body.
//!
//! wit-bindgen-rust writes such stubs itself (its `stubs` option), but inside the bindings
//! module, for a type named `Stub` and with paths relative to that module. This module takes
//! its `impl` blocks out and makes them fit the crate root: paths go through `bindings::`, the
//! world's traits are implemented by `Component` and each exported resource by a type of its
//! own.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use wit_parser::{Resolve, WorldId};

/// Which kind of crate the source is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrateKind {
    Lib,
    Bin,
}

/// Primitive types, keywords and roots that stub signatures use without going through
/// `bindings::`.
const OUTSIDE_BINDINGS: &[&str] = &[
    "Self", "self", "crate", "async", "fn", "mut", "dyn", "impl", "bool", "char", "str", "u8",
    "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "String", "Vec", "Box",
];

/// What wit-bindgen puts on each stub function, whose parameters the body does not use.
const ALLOW_UNUSED: &str = "#[allow(unused_variables)]";

/// The runtime items wit-bindgen reaches through its private `_rt` module, and their names
/// in the standard prelude.
const RT_PRELUDE: &[(&str, &str)] =
    &[("_rt::String", "String"), ("_rt::Vec", "Vec"), ("_rt::Box", "Box")];

/// The source of `src/lib.rs` (or `src/main.rs`) for a crate implementing `world`, which
/// the first line names as `world_name`.
pub fn crate_source(
    resolve: &Resolve,
    world: WorldId,
    world_name: &str,
    kind: CrateKind,
) -> Result<String> {
    let mut stubs = Stubs::extract(&generate_with_stubs(resolve, world)?)?;
    if kind == CrateKind::Bin {
        // A binary's export of `wasi:cli/run` is what runs: have it run `main`.
        let run = "impl bindings::exports::wasi::cli::run::Guest for Component {";
        for block in stubs.blocks.iter_mut().filter(|b| b.trim_start().starts_with(run)) {
            *block = block.replace("todo!()", "main();\n        Ok(())");
        }
    }
    let mut source = match kind {
        CrateKind::Lib => format!("//! A component implementing the `{world_name}` world.\n"),
        CrateKind::Bin => format!("//! A command with the `{world_name}` world.\n"),
    };
    source.push_str("\n#[allow(warnings)]\nmod bindings;\n");
    if kind == CrateKind::Bin {
        source.push_str("\nfn main() {\n    println!(\"Hello, world!\");\n}\n");
    }
    if !stubs.blocks.is_empty() {
        source.push_str(&stubs.render());
    }
    Ok(source)
}

/// The bindings for `world` with wit-bindgen-rust's stubs, as one source file.
fn generate_with_stubs(resolve: &Resolve, world: WorldId) -> Result<String> {
    let options = wit_bindgen_rust::Opts {
        format: true,
        stubs: true,
        generate_all: true,
        pub_export_macro: true,
        default_bindings_module: Some("bindings".to_string()),
        ..Default::default()
    };
    crate::bindings::run_wit_bindgen(options, resolve, world)
        .context("failed to generate the stub implementation")
}

/// The `impl` blocks of the stubs, rewritten for the crate root, and the resource types they
/// need.
#[derive(Debug, Default)]
struct Stubs {
    blocks: Vec<String>,
    /// Interface path and resource name as wit-bindgen spells them -> our type for it.
    resources: BTreeMap<(String, String), String>,
}

impl Stubs {
    fn extract(generated: &str) -> Result<Self> {
        let mut stubs = Self::default();
        let mut lines = generated.lines();
        while let Some(line) = lines.next() {
            let Some(header) =
                line.strip_prefix("impl ").and_then(|l| l.strip_suffix(" for Stub {"))
            else {
                continue;
            };
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "}").collect();
            let block = stubs.rewrite_block(header, &body)?;
            stubs.blocks.push(block);
        }
        Ok(stubs)
    }

    /// Rewrites `impl <header> for Stub { <body> }`.
    fn rewrite_block(&mut self, header: &str, body: &[&str]) -> Result<String> {
        let (interface, last) = header.rsplit_once("::").unwrap_or(("", header));
        let implementor = match last.strip_prefix("Guest") {
            Some("") => "Component".to_string(),
            Some(resource) => self.resource_type(interface, resource),
            None => bail!("unexpected stub for `{header}`"),
        };
        let mut block = format!("\nimpl bindings::{header} for {implementor} {{\n");
        // wit-bindgen puts the attribute above the doc comment; it reads better below.
        let mut attribute = None;
        for line in body {
            if line.trim_start() == ALLOW_UNUSED {
                attribute = Some(*line);
                continue;
            }
            if !line.trim_start().starts_with("///")
                && let Some(attribute) = attribute.take()
            {
                block.push_str(attribute);
                block.push('\n');
            }
            if let Some(line) = self.rewrite_line(interface, line)? {
                block.push_str(&line);
                block.push('\n');
            }
        }
        block.push_str("}\n");
        Ok(block)
    }

    /// One line of a block, rewritten; `None` drops it.
    fn rewrite_line(&mut self, interface: &str, line: &str) -> Result<Option<String>> {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        // The lint is about trait definitions; on an impl it only adds noise.
        if trimmed == "#[allow(async_fn_in_trait)]" {
            return Ok(None);
        }
        if trimmed.starts_with("///") {
            return Ok(Some(line.to_string()));
        }
        if trimmed == "unreachable!()" {
            return Ok(Some(format!("{indent}todo!()")));
        }
        if let Some(resource) =
            trimmed.strip_prefix("type ").and_then(|t| t.strip_suffix(" = Stub;"))
        {
            let ours = self.resource_type(interface, resource);
            return Ok(Some(format!("{indent}type {resource} = {ours};")));
        }
        let line = through_bindings(line)?;
        Ok(Some(match line.strip_suffix(" -> () {") {
            Some(signature) => format!("{signature} {{"),
            None => line,
        }))
    }

    /// Our type for `resource` of `interface`: its own name, unless another resource or the
    /// component already has that name.
    fn resource_type(&mut self, interface: &str, resource: &str) -> String {
        let key = (interface.to_string(), resource.to_string());
        if let Some(name) = self.resources.get(&key) {
            return name.clone();
        }
        let taken = |name: &str| name == "Component" || self.resources.values().any(|n| n == name);
        let module = interface.rsplit("::").next().unwrap_or_default();
        let qualified = format!("{}{resource}", upper_camel(module));
        let mut name = if taken(resource) { qualified } else { resource.to_string() };
        let base = name.clone();
        let mut n = 2;
        while taken(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.resources.insert(key, name.clone());
        name
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "\n/// The component: implements the world's exports.\nstruct Component;\n",
        );
        for ((_, resource), name) in &self.resources {
            out.push_str(&format!("\n/// The `{resource}` resource.\nstruct {name};\n"));
        }
        for block in &self.blocks {
            out.push_str(block);
        }
        out.push_str("\nbindings::export!(Component with_types_in bindings);\n");
        out
    }
}

/// Puts `bindings::` before each path in `line` that starts at the bindings module's root, and
/// names wit-bindgen's runtime types as the prelude does.
fn through_bindings(line: &str) -> Result<String> {
    let mut line = line.to_string();
    for (rt, prelude) in RT_PRELUDE {
        line = line.replace(rt, prelude);
    }
    if line.contains("_rt::") {
        bail!("the stub uses a wit-bindgen runtime item this version does not know: {line}");
    }

    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line.as_str();
    while let Some(start) = rest.find(|c: char| c.is_alphabetic() || c == '_') {
        let (before, from) = rest.split_at(start);
        let len = from.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(from.len());
        let (word, after) = from.split_at(len);
        out.push_str(before);
        if starts_bindings_path(&out, word, after) {
            out.push_str("bindings::");
        }
        out.push_str(word);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `word`, between `before` and `after`, begins a path into the bindings: not a
/// continuation of a path, a lifetime, a function or parameter name, a keyword or a type
/// from the prelude.
fn starts_bindings_path(before: &str, word: &str, after: &str) -> bool {
    let continues_path = before.ends_with("::") || before.ends_with('\'');
    let is_parameter = after.starts_with(':') && !after.starts_with("::");
    let previous = before.trim_end().rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).next();
    let is_function = before.ends_with(' ') && previous == Some("fn");
    !continues_path && !is_parameter && !is_function && !OUTSIDE_BINDINGS.contains(&word)
}

fn upper_camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(text: &str) -> (Resolve, WorldId) {
        let mut resolve = Resolve::default();
        let package = resolve.push_str("test.wit", text).unwrap();
        let world = resolve.select_world(&[package], None).unwrap();
        (resolve, world)
    }

    #[test]
    fn root_exports_are_implemented_by_the_component() {
        let (resolve, world) = world(
            "package acme:greet;
             interface types { enum case-style { lower, upper } }
             world greeter {
                 use types.{case-style};
                 export greet: func(name: string, style: case-style) -> list<string>;
             }",
        );
        let source = crate_source(&resolve, world, "test", CrateKind::Lib).unwrap();
        assert!(source.contains("mod bindings;"), "{source}");
        assert!(source.contains("impl bindings::Guest for Component {"), "{source}");
        assert!(
            source.contains(
                "fn greet(name: String, style: bindings::CaseStyle) -> Vec<String> {\n        \
                 todo!()"
            ),
            "{source}"
        );
        assert!(source.ends_with("bindings::export!(Component with_types_in bindings);\n"));
    }

    #[test]
    fn exported_interfaces_and_resources_get_their_own_impls() {
        let (resolve, world) = world(
            "package acme:count;
             interface counter {
                 resource counter {
                     constructor(start: u32);
                     bump: func(by: u32) -> u32;
                 }
                 record pair { a: u32, b: option<string> }
                 total: func(items: list<pair>) -> result<tuple<u32, string>, string>;
                 reset: func();
             }
             world app { export counter; }",
        );
        let source = crate_source(&resolve, world, "test", CrateKind::Lib).unwrap();
        let guest = "impl bindings::exports::acme::count::counter::Guest for Component {";
        assert!(source.contains(guest), "{source}");
        assert!(source.contains("type Counter = Counter;"), "{source}");
        let resource = "impl bindings::exports::acme::count::counter::GuestCounter for Counter {";
        assert!(source.contains(resource), "{source}");
        assert!(source.contains("struct Counter;"), "{source}");
        assert!(source.contains("fn bump(&self, by: u32) -> u32 {"), "{source}");
        assert!(
            source.contains("items: Vec<bindings::exports::acme::count::counter::Pair>"),
            "{source}"
        );
        assert!(source.contains(") -> ::core::result::Result<(u32, String), String>"), "{source}");
        assert!(!source.contains("async_fn_in_trait"), "{source}");
        assert!(source.contains("    #[allow(unused_variables)]\n    fn total("), "{source}");
        assert!(source.contains("    fn reset() {\n        todo!()"), "{source}");
    }

    #[test]
    fn a_command_without_exports_is_only_a_main() {
        let (resolve, world) = world("package acme:tool; world tool {}");
        let source = crate_source(&resolve, world, "test", CrateKind::Bin).unwrap();
        assert!(source.contains("fn main() {"), "{source}");
        assert!(!source.contains("Component"), "{source}");
        assert!(!source.contains("export!"), "{source}");
    }

    #[test]
    fn a_commands_run_export_runs_main() {
        let text = "package wasi:cli@0.2.6;\ninterface run { run: func() -> result; }\n\
                    world command { export run; }";
        let (resolve, world) = world(text);
        let source = crate_source(&resolve, world, "test", CrateKind::Bin).unwrap();
        assert!(
            source.contains("-> ::core::result::Result<(), ()> {\n        main();\n        Ok(())"),
            "{source}"
        );
        assert!(!source.contains("todo!()"), "{source}");
    }

    #[test]
    fn parameters_lifetimes_and_continued_paths_are_left_alone() {
        let line = "    fn f(wasi: Own, b: FooBorrow<'_>, c: ::core::option::Option<u8>) -> Self {";
        assert_eq!(
            through_bindings(line).unwrap(),
            "    fn f(wasi: bindings::Own, b: bindings::FooBorrow<'_>, \
             c: ::core::option::Option<u8>) -> Self {"
        );
    }

    #[test]
    fn resources_with_one_name_in_two_interfaces_get_two_types() {
        let mut stubs = Stubs::default();
        assert_eq!(stubs.resource_type("exports::a::b::left", "Handle"), "Handle");
        assert_eq!(stubs.resource_type("exports::a::b::right", "Handle"), "RightHandle");
        assert_eq!(stubs.resource_type("exports::a::b::left", "Handle"), "Handle");
        assert_eq!(stubs.resource_type("exports::a::b::x", "Component"), "XComponent");
    }
}
