//! Every crate's modules import one another as a tree of layers: no module imports, directly
//! or through others, a module that imports it. A cycle means two modules are one idea split in
//! two files, or one module holds two ideas; either way a reader cannot learn one without the
//! other. The check reads the paths a module names (`crate::`, `super::`, `self::`, and its own
//! child modules) in its `use` lines and its code, outside its `#[cfg(test)]` module.
//!
//! `cargo test -p stomp-testkit --test imports -- --nocapture` prints every crate's graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's crates whose sources are checked.
const CRATES: [&str; 8] = [
    "stomp-codec",
    "stomp-session",
    "stomp-broker",
    "stomp-blocking",
    "stomp-tokio",
    "stomp-server",
    "stomp-server-bin",
    "testkit",
];

/// A module's path from its crate's root, `""` for the root itself.
type Module = String;

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Path,
    Open,
    Close,
    Other,
}

/// The tokens of Rust source that name paths; comments, strings and characters are skipped.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Token::Other);
        } else if c == 'r' && (next == Some('"') || next == Some('#')) {
            // A raw string: r"..." or r#"..."#.
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(Token::Ident("r".into()));
                i += 1;
                continue;
            }
            j += 1;
            let closing: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            while j < chars.len() && !chars[j..].starts_with(&closing.chars().collect::<Vec<_>>()) {
                j += 1;
            }
            i = j + closing.len();
            out.push(Token::Other);
        } else if c == '\'' {
            // A character literal or a lifetime.
            if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else {
                i += 1;
            }
            out.push(Token::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_whitespace() {
            i += 1;
        } else if c == ':' && next == Some(':') {
            out.push(Token::Path);
            i += 2;
        } else {
            out.push(match c {
                '{' => Token::Open,
                '}' => Token::Close,
                _ => Token::Other,
            });
            i += 1;
        }
    }
    out
}

/// The paths of a use tree or expression path starting at `tokens[at]`, each as its segments.
fn paths(tokens: &[Token], at: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    let mut i = at;
    loop {
        match tokens.get(i) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                i += 1;
                if tokens.get(i) == Some(&Token::Path) {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            Some(Token::Open) => {
                i += 1;
                while !matches!(tokens.get(i), Some(Token::Close) | None) {
                    let before = i;
                    i = paths(tokens, i, path.clone(), out);
                    if i == before {
                        i += 1;
                    }
                }
                return i + 1;
            }
            // A glob (`module::*`) names the module; anything else ends the path.
            _ => {
                if i > at {
                    out.push(path);
                }
                return i;
            }
        }
    }
}

/// The module a file holds, from its path under `src`.
fn module_of(relative: &Path) -> Module {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

fn join(base: &str, name: &str) -> Module {
    match base {
        "" => name.to_owned(),
        _ => format!("{base}::{name}"),
    }
}

fn parent(module: &str) -> Module {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

/// The source up to its test module (a `mod` under a `#[cfg(..test..)]` attribute), which may
/// import anything of its parent.
fn without_tests(source: &str) -> &str {
    let mut offset = 0;
    let mut previous: Option<(usize, &str)> = None;
    for line in source.split_inclusive('\n') {
        if line.starts_with("mod ") {
            if let Some((start, attribute)) = previous {
                if attribute.starts_with("#[cfg(") && attribute.contains("test") {
                    return &source[..start];
                }
            }
        }
        previous = Some((offset, line));
        offset += line.len();
    }
    source
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The paths `source` (the module `module`) names, each as the deepest module it reaches and
/// the first segment past it (an item's name), if any.
fn named(module: &str, source: &str, modules: &BTreeSet<Module>) -> Vec<(Module, Option<String>)> {
    let tokens = tokens(without_tests(source));
    let children: BTreeSet<&str> = tokens
        .windows(2)
        .filter_map(|pair| match pair {
            [Token::Ident(m), Token::Ident(name)] if m == "mod" => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut named = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let preceded_by_path = i > 0 && tokens[i - 1] == Token::Path;
        let (base, from) = match &tokens[i] {
            Token::Ident(first) if !preceded_by_path && tokens.get(i + 1) == Some(&Token::Path) => {
                match first.as_str() {
                    "crate" => (String::new(), i + 2),
                    "super" => (parent(module), i + 2),
                    "self" => (module.to_owned(), i + 2),
                    // A child module's name starts from this module, and is the first segment.
                    child if children.contains(child) => (module.to_owned(), i),
                    _ => {
                        i += 1;
                        continue;
                    }
                }
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let mut found = Vec::new();
        i = paths(&tokens, from, Vec::new(), &mut found);
        for segments in found {
            let mut target = base.clone();
            let mut item = None;
            for segment in &segments {
                let deeper = join(&target, segment);
                if modules.contains(&deeper) {
                    target = deeper;
                } else {
                    item = Some(segment.clone());
                    break;
                }
            }
            named.push((target, item));
        }
    }
    named
}

/// Each module of the crate at `root` and the modules it imports. A name the crate's root
/// re-exports counts as an import of the module that defines it.
fn graph(root: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let src = root.join("src");
    let mut sources = Vec::new();
    files(&src, &mut sources);
    let sources: BTreeMap<Module, String> = sources
        .iter()
        .map(|file| {
            let module = module_of(file.strip_prefix(&src).unwrap());
            (module, std::fs::read_to_string(file).unwrap())
        })
        .collect();
    let modules: BTreeSet<Module> = sources.keys().cloned().collect();
    let exports: BTreeMap<String, Module> = sources
        .get("")
        .map(|root| named("", root, &modules))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(target, item)| Some((item?, target)))
        .filter(|(_, target)| !target.is_empty())
        .collect();
    let mut graph = BTreeMap::new();
    for (module, source) in &sources {
        let imports = named(module, source, &modules)
            .into_iter()
            .map(|(target, item)| match (target.as_str(), item) {
                ("", Some(item)) => exports.get(&item).cloned().unwrap_or(target),
                _ => target,
            })
            .filter(|target| target != module)
            .collect();
        graph.insert(module.clone(), imports);
    }
    graph
}

/// A cycle through `module`, if one is reachable from it.
fn cycle(
    graph: &BTreeMap<Module, BTreeSet<Module>>,
    module: &Module,
    stack: &mut Vec<Module>,
    done: &mut BTreeSet<Module>,
) -> Option<Vec<Module>> {
    if let Some(at) = stack.iter().position(|m| m == module) {
        let mut found = stack[at..].to_vec();
        found.push(module.clone());
        return Some(found);
    }
    if done.contains(module) {
        return None;
    }
    stack.push(module.clone());
    for next in graph.get(module).into_iter().flatten() {
        if let Some(found) = cycle(graph, next, stack, done) {
            return Some(found);
        }
    }
    stack.pop();
    done.insert(module.clone());
    None
}

fn name(module: &str) -> &str {
    match module {
        "" => "(root)",
        _ => module,
    }
}

#[test]
fn every_crates_modules_import_each_other_as_a_tree_of_layers() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cycles = BTreeSet::new();
    for krate in CRATES {
        let graph = graph(&workspace.join(krate));
        println!("{krate}:");
        for (module, imports) in &graph {
            let imports: Vec<&str> = imports.iter().map(|m| name(m)).collect();
            println!("  {} -> {}", name(module), imports.join(", "));
        }
        let mut done = BTreeSet::new();
        for module in graph.keys() {
            if let Some(mut found) = cycle(&graph, module, &mut Vec::new(), &mut done) {
                // Each cycle once, from its first module in order.
                found.pop();
                let first = (0..found.len()).min_by_key(|&i| &found[i]).unwrap_or(0);
                found.rotate_left(first);
                found.push(found[0].clone());
                let found: Vec<&str> = found.iter().map(|m| name(m)).collect();
                cycles.insert(format!("{krate}: {}", found.join(" -> ")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}",
        Vec::from_iter(cycles).join("\n")
    );
}

#[test]
fn the_check_sees_paths_in_groups_nested_groups_and_code() {
    let source = "use crate::{a::{B, c::D}, e};\nfn f() { super::g::h(); x::y(); }\n// crate::z";
    let tokens = tokens(source);
    let mut found = Vec::new();
    paths(&tokens, 3, Vec::new(), &mut found);
    assert_eq!(found, [vec!["a", "B"], vec!["a", "c", "D"], vec!["e"]]);
    assert!(!tokens.contains(&Token::Ident("z".into())));
}
