//! The layer picture of ARCHITECTURE ("Layers: dependencies point one way") as a test: every
//! `crate::` path in `src/` must point from a module to one it may use. A new import against
//! the direction (say `shard` reaching up into `api`) fails here with the file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and the top-level modules it may use, top to bottom. A
/// layer uses only layers below it, so there can be no cycle between top-level modules.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "observe", "net", "api", "txn", "group", "log", "catalog", "shard", "config", "util",
        ],
    ),
    // The admin HTTP listener reads the coordinators' and partitions' state through their
    // services, and the counters every layer keeps in `util::metrics`.
    (
        "observe",
        &["group", "log", "catalog", "shard", "config", "util"],
    ),
    ("net", &["api", "shard", "config", "util"]),
    (
        "api",
        &["txn", "group", "log", "catalog", "shard", "config", "util"],
    ),
    // The transaction coordinator tells group coordinators when a transaction's offsets
    // commit or abort; groups know nothing of transactions beyond their pending offsets.
    (
        "txn",
        &["group", "log", "catalog", "shard", "config", "util"],
    ),
    ("group", &["log", "catalog", "shard", "config", "util"]),
    ("log", &["catalog", "shard", "config", "util"]),
    ("catalog", &["shard", "config", "util"]),
    ("shard", &["config", "util"]),
    ("config", &["util"]),
    ("util", &[]),
    ("alloc_guard", &[]),
    // The admin tools of the `shardlog` binary: Kafka clients, independent of the broker.
    ("admin", &[]),
];

/// The crate root declares and re-exports modules; it may name any of them.
const ROOT_FILES: &[&str] = &["lib.rs", "main.rs"];

/// One `crate::` reference against the layer picture.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// The top-level module a file under `src/` belongs to (`api` for `src/api/fetch.rs`,
/// `server` for `src/server.rs`), or `None` for the crate root.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    if ROOT_FILES.contains(&first.as_ref()) {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

/// The top-level modules a line of source names through `crate::` paths, including grouped
/// imports (`use crate::{a, b::c}`).
fn crate_references(line: &str) -> BTreeSet<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for item in inner.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
        rest = after;
    }
    out
}

/// Checks one file's source; `relative` is its path under `src/`.
fn check_source(relative: &Path, source: &str) -> Vec<Violation> {
    let Some(from) = module_of(relative) else {
        return Vec::new();
    };
    let allowed: &[&str] = LAYERS
        .iter()
        .find(|(m, _)| *m == from)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| {
            panic!("src/{from} is not in LAYERS: place the new module in the layer picture")
        });
    let mut out = Vec::new();
    for (i, line) in source.lines().enumerate() {
        for to in crate_references(line) {
            if to != from && !allowed.contains(&to.as_str()) {
                out.push(Violation {
                    file: relative.display().to_string(),
                    line: i + 1,
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::` reference in `src/` points down the layer picture.
#[test]
fn imports_follow_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found the sources under {}",
        src.display()
    );
    let mut violations = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).expect("read source");
        let relative = path.strip_prefix(&src).expect("under src/");
        violations.extend(check_source(relative, &source));
    }
    let report: Vec<String> = violations
        .iter()
        .map(|v| {
            let allowed = LAYERS
                .iter()
                .find(|(m, _)| *m == v.from)
                .map(|(_, a)| a.join(", "))
                .unwrap_or_default();
            format!(
                "src/{}:{} uses crate::{} but {} may use only: {allowed}",
                v.file, v.line, v.to, v.from
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "imports against the layer direction (ARCHITECTURE \"Layers\"):\n{}",
        report.join("\n")
    );
}

/// The check catches a back-edge (the transport reaching up into the API layer), grouped
/// imports and inline paths, and ignores comments.
#[test]
fn a_back_edge_is_caught() {
    let found = check_source(
        Path::new("shard/mod.rs"),
        "use crate::config::Config;\nuse crate::{util, api::Ctx};\n// crate::group in a comment\nfn f() { crate::log::batch::x(); }\n",
    );
    let edges: Vec<(usize, &str)> = found.iter().map(|v| (v.line, v.to.as_str())).collect();
    assert_eq!(edges, [(2, "api"), (4, "log")]);
    assert!(check_source(Path::new("lib.rs"), "use crate::api;").is_empty());
    assert!(check_source(Path::new("api/fetch.rs"), "use crate::log::Partitions;").is_empty());
}

/// Every layer's allowed modules are below it in `LAYERS`, so the picture has no cycle.
#[test]
fn layers_point_down_only() {
    for (i, (module, allowed)) in LAYERS.iter().enumerate() {
        for a in *allowed {
            let below = LAYERS[i + 1..].iter().any(|(m, _)| m == a);
            assert!(below, "{module} may use {a}, which is not below it");
        }
    }
}
