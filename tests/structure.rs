//! The shape of the source tree, checked: a request reads downward through the modules
//! (no import cycle between the crate's modules) and no source file grows past what a
//! newcomer reads in one sitting (issue 11). Functions are held to 80 lines by clippy's
//! `too_many_lines` (threshold in `clippy.toml`, lint on in `lib.rs` and `main.rs`).
//!
//! The graph is read from the text of `src/`: every `crate::<module>` a file names is an
//! edge from the file's top-level module (a folder like `src/backup/` is one module) to
//! `<module>`. Text, not the compiler's view, so a cycle hidden in a doc comment counts
//! too; that errs on the strict side, which is the side a structure check should err on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file longer than this is a sign that it holds more than one concern.
const MAX_FILE_LINES: usize = 500;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("read a src/ entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/backup/api.rs` → `backup`; `src/plan.rs` → `plan`; `lib.rs`/`main.rs` → None.
fn top_module(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src_dir()).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Every `crate::<ident>` in a file, including inside `use crate::{a, b::c}` groups.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d}`: the first identifier of each comma-separated item.
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let ident: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !ident.is_empty() {
                    found.insert(ident);
                }
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                found.insert(ident);
            }
        }
    }
    found
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = top_module(file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read a source file");
        let edges = graph.entry(from.clone()).or_default();
        for to in crate_references(&text) {
            if to != from && modules.contains(&to) {
                edges.insert(to);
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.to_string());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    let found = cycles(&graph);
    let explain: Vec<String> = found
        .iter()
        .map(|component| {
            let edges: Vec<String> = component
                .iter()
                .flat_map(|from| {
                    graph[from]
                        .iter()
                        .filter(|to| component.contains(to))
                        .map(move |to| format!("{from} -> {to}"))
                })
                .collect();
            format!("{{{}}}: {}", component.join(", "), edges.join("; "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between modules (move the shared words to a module both can \
         import):\n{}",
        explain.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_500_lines() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).ok()?.lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "split these by concern (at most {MAX_FILE_LINES} lines each):\n{}",
        long.join("\n")
    );
}

/// The checker itself: a planted cycle is found, a chain is not, and `use crate::{..}`
/// groups count.
#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let refs = crate_references("use crate::{alpha, beta::Gamma};\nlet x = crate::delta::f();");
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["alpha", "beta", "delta"]
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
    let chain: BTreeMap<String, BTreeSet<String>> = [("a", vec!["b"]), ("b", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
    assert!(cycles(&chain).is_empty());
}
