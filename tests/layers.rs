//! The layer map, checked over the sources.
//!
//! Every module sits on one layer; a module may import only modules on its own layer or
//! below, and no modules may import each other in a circle. The map is written once, in
//! [`LAYERS`]; DESIGN.md draws the same picture. The graph is read from the code itself:
//! `use` items, paths in bodies (`crate::x::y`, `super::z`) and the paths inside macro
//! calls, in every file under `src/`, tests included. This binary reads files only; it
//! calls nothing of the crate, so it links quickly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The map, bottom up. A top-level module not listed here fails the check.
const LAYERS: &[(&str, u8)] = &[
    // 1: ground
    ("clock", 1),
    ("secret", 1),
    ("fsutil", 1),
    ("ids", 1),
    // 2: configuration, and logging set up from it
    ("config", 2),
    ("logging", 2),
    // 3
    ("store", 3),
    ("keys", 3),
    // 4
    ("audit", 4),
    ("tls", 4),
    ("sandbox", 4),
    // 5
    ("auth", 5),
    ("policy", 5),
    // 6. `error` is the aggregate of the lower modules' errors for callers that only
    // pass errors on (the server's state, app, cli, the HTTP mapping): it names auth's,
    // so it sits above it.
    ("gateway", 6),
    ("pairing", 6),
    ("discovery", 6),
    ("hardware", 6),
    ("error", 6),
    ("security_audit", 6),
    // 7
    ("server", 7),
    ("admin", 7),
    // 8: wiring and entry; `lib` is the crate root (its re-exports), `main` the binary.
    ("app", 8),
    ("cli", 8),
    ("lib", 8),
    ("main", 8),
];

/// Imports that run up the map on purpose, each with why. At most three.
const JUSTIFIED_UPWARD: &[(&str, &str, &str)] = &[];

/// Circles between files that existed when the check was written: a folder's `mod.rs`
/// re-exports its files, and they reach back through `super::` for the folder's error
/// or shared types. The check fails on a circle that is not inside one of these, so they
/// can only shrink; break one by moving what the files share into a leaf file of the
/// folder, then delete or narrow its entry. (A parser's recursion stays inside one file,
/// so it is no circle between files and needs no entry.)
const KNOWN_FILE_CIRCLES: &[&[&str]] = &[
    // Empty: every circle the check found when it landed is broken. `policy/`'s one
    // recursion (the walk in analyze.rs judges a command with rules/, and a wrapper or
    // `sh -c` hands the command it runs back) goes through methods of the shared
    // `Analyzer` (`program`, `code_string`, `judge_inner`), and what its files share sits
    // in leaf files (verdict, words, state, filter, rules/common), so no two of its files
    // import each other.
];

/// One source file: its path under `src/` and its text.
struct Source {
    path: String,
    text: String,
}

/// What the check found.
#[derive(Debug, Default)]
struct Report {
    /// Edges between top-level modules: (from, to) → one place that makes it.
    module_edges: BTreeMap<(String, String), String>,
    /// Edges between files.
    file_edges: BTreeSet<(String, String)>,
    /// Circles of top-level modules (each a strongly connected set of two or more).
    module_circles: Vec<Vec<String>>,
    /// Circles of files.
    file_circles: Vec<Vec<String>>,
    /// Imports from a lower layer to a higher one: (from, to, where).
    upward: Vec<(String, String, String)>,
    /// Top-level modules the map does not place.
    unplaced: BTreeSet<String>,
}

/// The module path a file defines: `config/validate/mod.rs` → `config::validate`.
fn module_of(path: &str) -> Vec<String> {
    let trimmed = path.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts
}

/// The top-level module a module path belongs to (`lib` for the crate root).
fn top_of(module: &[String]) -> String {
    module.first().cloned().unwrap_or_else(|| "lib".into())
}

/// Collects paths (as segment lists) with the module they are written in.
struct Collector<'a> {
    module: Vec<String>,
    /// Module path → names of its child modules (from files and inline `mod` items).
    children: &'a BTreeMap<Vec<String>, BTreeSet<String>>,
    /// The binary names the library `aisopod`, not `crate`.
    crate_names: &'a [&'a str],
    found: Vec<(Vec<String>, Vec<String>)>,
}

impl Collector<'_> {
    fn push(&mut self, segments: Vec<String>) {
        if segments.len() < 2 {
            return;
        }
        self.found.push((self.module.clone(), segments));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                } else {
                    full.push("*".into());
                }
                self.push(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.push(full);
            }
            syn::UseTree::Glob(_) => {
                let mut full = prefix.clone();
                full.push("*".into());
                self.push(full);
            }
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }

    /// Paths inside a macro call's tokens: `ident :: ident :: ...` runs.
    fn tokens(&mut self, stream: TokenStream) {
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(first) => {
                    let mut segments = vec![first.to_string()];
                    let mut j = i + 1;
                    while j + 2 < tokens.len()
                        && matches!(&tokens[j], TokenTree::Punct(p) if p.as_char() == ':')
                        && matches!(&tokens[j + 1], TokenTree::Punct(p) if p.as_char() == ':')
                    {
                        match &tokens[j + 2] {
                            TokenTree::Ident(next) => segments.push(next.to_string()),
                            _ => break,
                        }
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.push(segments);
                        i = j;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// The absolute module path a written path points into, if it is the crate's.
    fn resolve(&self, module: &[String], segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let (mut base, rest): (Vec<String>, &[String]) =
            if first == "crate" || self.crate_names.contains(&first.as_str()) {
                (Vec::new(), &segments[1..])
            } else if first == "self" {
                (module.to_vec(), &segments[1..])
            } else if first == "super" {
                let mut base = module.to_vec();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                (base, rest)
            } else if self.children.get(module).is_some_and(|c| c.contains(first)) {
                (module.to_vec(), segments)
            } else {
                return None;
            };
        // The longest prefix that names a module.
        for segment in rest {
            let mut next = base.clone();
            next.push(segment.clone());
            if self
                .children
                .get(&base)
                .is_some_and(|c| c.contains(segment))
            {
                base = next;
            } else {
                break;
            }
        }
        Some(base)
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.module.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.module.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// Inline `mod name { ... }` items, as module paths under `module`.
fn inline_modules(items: &[syn::Item], module: &[String], out: &mut Vec<Vec<String>>) {
    for item in items {
        if let syn::Item::Mod(m) = item {
            let mut path = module.to_vec();
            path.push(m.ident.to_string());
            if let Some((_, inner)) = &m.content {
                out.push(path.clone());
                inline_modules(inner, &path, out);
            }
        }
    }
}

/// Strongly connected sets of two or more nodes (Tarjan's algorithm).
fn circles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let mut nodes: BTreeSet<&str> = BTreeSet::new();
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        nodes.insert(from);
        nodes.insert(to);
        next.entry(from).or_default().push(to);
    }
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn connect<'a>(node: &'a str, next: &BTreeMap<&'a str, Vec<&'a str>>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(node, n);
        s.low.insert(node, n);
        s.stack.push(node);
        s.on_stack.insert(node);
        for &to in next.get(node).map(Vec::as_slice).unwrap_or_default() {
            if !s.index.contains_key(to) {
                connect(to, next, s);
                let low = s.low[node].min(s.low[to]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(to) {
                let low = s.low[node].min(s.index[to]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut set = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                set.push(top.to_string());
                if top == node {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                s.found.push(set);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in nodes {
        if !state.index.contains_key(node) {
            connect(node, &next, &mut state);
        }
    }
    state.found.sort();
    state.found
}

/// Reads the graph of `sources` and checks it against `layers`.
fn check(sources: &[Source], layers: &[(&str, u8)]) -> Report {
    let layer: BTreeMap<&str, u8> = layers.iter().copied().collect();
    // The binary is a crate of its own that names the library `aisopod`.
    let parsed: Vec<(&Source, Vec<String>, syn::File)> = sources
        .iter()
        .map(|s| {
            let file = syn::parse_file(&s.text).unwrap_or_else(|e| panic!("{}: {e}", s.path));
            let module = if s.path == "main.rs" {
                vec!["main".to_string()]
            } else {
                module_of(&s.path)
            };
            (s, module, file)
        })
        .collect();
    // Every module, and which file holds it.
    let mut file_of: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for (source, module, file) in &parsed {
        file_of.insert(module.clone(), source.path.clone());
        let mut inline = Vec::new();
        inline_modules(&file.items, module, &mut inline);
        for m in inline {
            file_of.insert(m, source.path.clone());
        }
    }
    for module in file_of.keys() {
        if let Some((last, parent)) = module.split_last() {
            children
                .entry(parent.to_vec())
                .or_default()
                .insert(last.clone());
        }
    }
    let mut report = Report::default();
    for (source, module, file) in &parsed {
        let crate_names: &[&str] = if source.path == "main.rs" {
            &["aisopod"]
        } else {
            &[]
        };
        let mut collector = Collector {
            module: module.clone(),
            children: &children,
            crate_names,
            found: Vec::new(),
        };
        collector.visit_file(file);
        let from_top = top_of(module);
        for (written_in, segments) in &collector.found {
            let Some(target) = collector.resolve(written_in, segments) else {
                continue;
            };
            let Some(target_file) = file_of.get(&target) else {
                continue;
            };
            if *target_file != source.path {
                report
                    .file_edges
                    .insert((source.path.clone(), target_file.clone()));
            }
            let to_top = top_of(&target);
            if to_top != from_top {
                report
                    .module_edges
                    .entry((from_top.clone(), to_top))
                    .or_insert_with(|| format!("{}: {}", source.path, segments.join("::")));
            }
        }
    }
    for ((from, to), place) in &report.module_edges {
        for name in [from, to] {
            if !layer.contains_key(name.as_str()) {
                report.unplaced.insert(name.clone());
            }
        }
        if let (Some(f), Some(t)) = (layer.get(from.as_str()), layer.get(to.as_str()))
            && f < t
        {
            report
                .upward
                .push((from.clone(), to.clone(), place.clone()));
        }
    }
    let module_edges: BTreeSet<(String, String)> = report.module_edges.keys().cloned().collect();
    report.module_circles = circles(&module_edges);
    report.file_circles = circles(&report.file_edges);
    report
}

/// Every `.rs` file under `dir`, with paths relative to it.
fn read_sources(dir: &Path) -> Vec<Source> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Source>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(Source {
                    path: path
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    text: std::fs::read_to_string(&path).unwrap(),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn imports_run_down_the_layer_map_without_circles() {
    let sources = read_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let report = check(&sources, LAYERS);
    assert!(
        JUSTIFIED_UPWARD.len() <= 3,
        "at most three justified upward imports"
    );
    let allowed = |from: &str, to: &str| {
        JUSTIFIED_UPWARD
            .iter()
            .any(|(f, t, _)| *f == from && *t == to)
    };
    let upward: Vec<_> = report
        .upward
        .iter()
        .filter(|(from, to, _)| !allowed(from, to))
        .collect();
    let file_circles: Vec<_> = report
        .file_circles
        .iter()
        .filter(|c| {
            !KNOWN_FILE_CIRCLES
                .iter()
                .any(|known| c.iter().all(|file| known.contains(&file.as_str())))
        })
        .collect();
    println!(
        "layer graph: {} files, {} file edges, {} module edges; {} module circles, {} file circles ({} known); {} upward imports ({} justified)",
        sources.len(),
        report.file_edges.len(),
        report.module_edges.len(),
        report.module_circles.len(),
        report.file_circles.len(),
        report.file_circles.len() - file_circles.len(),
        report.upward.len(),
        report.upward.len() - upward.len(),
    );
    for ((from, to), place) in &report.module_edges {
        println!("  {from} -> {to}   ({place})");
    }
    for circle in &report.file_circles {
        println!("  file circle: {}", circle.join(" "));
    }
    assert!(
        report.unplaced.is_empty(),
        "modules the map does not place (add them to LAYERS): {:?}",
        report.unplaced
    );
    assert!(
        report.module_circles.is_empty(),
        "modules import each other in a circle: {:?}",
        report.module_circles
    );
    assert!(
        upward.is_empty(),
        "imports that run up the layer map (from, to, where): {upward:#?}"
    );
    assert!(
        file_circles.is_empty(),
        "files import each other in a circle: {file_circles:#?}"
    );
}

fn tree(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(path, text)| Source {
            path: path.to_string(),
            text: text.to_string(),
        })
        .collect()
}

const SMALL_MAP: &[(&str, u8)] = &[("base", 1), ("middle", 2), ("top", 3), ("lib", 3)];

#[test]
fn the_check_catches_a_planted_upward_import_in_every_spelling() {
    let clean = tree(&[
        ("lib.rs", "pub mod base; pub mod middle; pub mod top;"),
        ("base.rs", "pub struct B;"),
        ("middle/mod.rs", "mod part; use crate::base::B;"),
        (
            "middle/part.rs",
            "pub fn f() -> super::super::base::B { crate::base::B }",
        ),
        ("top.rs", "use crate::{middle, base::B};"),
    ]);
    let report = check(&clean, SMALL_MAP);
    assert!(report.upward.is_empty(), "{:?}", report.upward);
    assert!(report.module_circles.is_empty());
    assert_eq!(report.module_edges.len(), 3, "{:?}", report.module_edges);

    for planted in [
        "use crate::top::T;",
        "use crate::{top::T};",
        "fn f() { let _ = crate::top::make(); }",
        "fn f() -> super::top::T { todo() }",
        "#[cfg(test)] mod tests { use super::super::top::T; }",
        "fn f() { assert!(matches!(x, crate::top::T)); }",
    ] {
        let mut sources = tree(&[
            ("lib.rs", "pub mod base; pub mod middle; pub mod top;"),
            ("top.rs", "pub struct T;"),
        ]);
        sources.push(Source {
            path: "base.rs".into(),
            text: planted.into(),
        });
        let report = check(&sources, SMALL_MAP);
        assert_eq!(
            report
                .upward
                .iter()
                .map(|(f, t, _)| (f.as_str(), t.as_str()))
                .collect::<Vec<_>>(),
            [("base", "top")],
            "{planted}"
        );
    }
}

#[test]
fn the_check_catches_circles_between_modules_and_between_files() {
    let sources = tree(&[
        ("lib.rs", "pub mod base; pub mod middle;"),
        ("base.rs", "use crate::middle::M; pub struct B;"),
        ("middle/mod.rs", "mod part; pub use part::P; pub struct M;"),
        (
            "middle/part.rs",
            "use super::M; pub struct P(crate::base::B);",
        ),
    ]);
    let report = check(&sources, SMALL_MAP);
    assert_eq!(report.module_circles, [vec!["base", "middle"]]);
    assert_eq!(
        report.file_circles,
        [vec!["base.rs", "middle/mod.rs", "middle/part.rs"]]
    );
    let unknown = check(
        &tree(&[("elsewhere.rs", "use crate::base::B;"), ("base.rs", "")]),
        SMALL_MAP,
    );
    assert_eq!(unknown.unplaced, BTreeSet::from(["elsewhere".to_string()]));
}
