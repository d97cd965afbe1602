//! ARCHITECTURE.md stays true and short: every path its code map and its
//! prose name exists (and every path DECISIONS.md names), every source
//! folder is on the map, and it is under 2,000 words.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md at the root")
}

/// The paths of the code map: the first fenced block, one entry (or a few,
/// separated by single spaces) per line before a gap of two spaces, nested
/// by indentation; deeper-indented lines without a path continue a
/// description.
fn code_map_paths(text: &str) -> Vec<String> {
    let block = text
        .split("```")
        .nth(1)
        .expect("ARCHITECTURE.md has a code map in a fenced block");
    let mut parents: Vec<(usize, String)> = Vec::new();
    let mut paths = Vec::new();
    for line in block.lines().skip(1) {
        let indent = line.len() - line.trim_start().len();
        let entry = line.trim_start().split("  ").next().unwrap_or_default();
        let names: Vec<&str> = entry.split(' ').collect();
        if entry.is_empty() || !names.iter().all(|n| n.contains('.') || n.ends_with('/')) {
            continue; // a description's continuation
        }
        parents.retain(|(depth, _)| *depth < indent);
        let prefix: String = parents.iter().map(|(_, dir)| dir.as_str()).collect();
        for name in &names {
            paths.push(format!("{prefix}{name}"));
        }
        if let [folder] = names.as_slice()
            && folder.ends_with('/')
        {
            parents.push((indent, (*folder).to_owned()));
        }
    }
    paths
}

/// The paths the prose names in backticks: relative to the root or to a
/// crate's `src/` (`engine/lock.rs` is `runtime/src/engine/lock.rs`).
fn prose_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.contains([' ', '<', '(', '*'])
                && (word.ends_with(".rs") || word.ends_with(".md") || word.ends_with('/'))
        })
        .map(str::to_owned)
        .collect()
}

fn exists(path: &str) -> bool {
    let root = root();
    ["", "runtime/src/", "layout/src/", "macros/src/"]
        .iter()
        .any(|base| root.join(base).join(path).exists())
}

#[test]
fn every_path_it_names_exists() {
    let text = architecture();
    let map = code_map_paths(&text);
    assert!(
        map.len() > 40,
        "the code map was not read as a tree: {map:?}"
    );
    let missing: Vec<String> = map
        .iter()
        .filter(|path| !root().join(path).exists())
        .chain(prose_paths(&text).iter().filter(|path| !exists(path)))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

#[test]
fn decisions_name_only_paths_that_exist() {
    let text =
        std::fs::read_to_string(root().join("DECISIONS.md")).expect("DECISIONS.md at the root");
    let missing: Vec<String> = prose_paths(&text)
        .into_iter()
        .filter(|path| !exists(path))
        .collect();
    assert!(
        missing.is_empty(),
        "DECISIONS.md names paths that do not exist: {missing:?}"
    );
}

/// A map to read in one sitting: the design log lives in DECISIONS.md.
#[test]
fn the_map_is_under_two_thousand_words() {
    let words = architecture().split_whitespace().count();
    assert!(words < 2000, "ARCHITECTURE.md has {words} words");
}

#[test]
fn every_source_folder_is_on_the_map() {
    let map = code_map_paths(&architecture());
    let mut unmapped = Vec::new();
    for krate in ["layout/src", "macros/src", "runtime/src"] {
        for entry in std::fs::read_dir(root().join(krate)).expect("a crate's src folder") {
            let entry = entry.expect("a folder entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if entry.path().is_dir() {
                format!("{krate}/{name}/")
            } else {
                format!("{krate}/{name}")
            };
            // Folders and files are on the map, whether as an entry of
            // their own or on a line that lists several.
            if !map.iter().any(|p| p == &path) {
                unmapped.push(path);
            }
        }
    }
    assert!(
        unmapped.is_empty(),
        "ARCHITECTURE.md's code map leaves out: {unmapped:?}"
    );
}

/// Every source file of the runtime, the folders below included.
fn runtime_sources(dir: &std::path::Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            runtime_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// A file read in one sitting: none of the runtime's is over 600 lines.
#[test]
fn no_runtime_file_is_over_six_hundred_lines() {
    let mut files = Vec::new();
    runtime_sources(&root().join("runtime/src"), &mut files);
    assert!(
        files.len() > 50,
        "the runtime's files were not found: {files:?}"
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path)
                .expect("a source file")
                .lines()
                .count();
            (lines > 600).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}
