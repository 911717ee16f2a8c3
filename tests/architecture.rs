//! The architecture, checked (docs/architecture.md describes it):
//!
//! 1. the dependency rules between the crates, read from the graph Cargo resolves;
//! 2. `fleet-core` names no device kind;
//! 3. no crate has an import cycle between sibling modules.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

// ─── 1. Dependency rules ────────────────────────────────────────────────────────────────────

/// `package` reaches none of `forbidden` through its normal and build dependencies (and, when
/// `dev`, through its own dev-dependencies too), however indirectly.
struct Rule {
    package: &'static str,
    forbidden: &'static [&'static str],
    dev: bool,
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        package: "fleet-core",
        forbidden: &[
            "axum",
            "reqwest",
            "tokio-tungstenite",
            "fleet-drivers",
            "fleet-sim",
            "fleet-exporter",
        ],
        dev: false,
        why: "the core is device-neutral: it neither serves HTTP nor speaks to devices, \
              and depends on no crate of ours",
    },
    Rule {
        package: "fleet-drivers",
        forbidden: &["axum", "fleet-sim", "fleet-exporter"],
        dev: true,
        why: "a driver knows nothing of serving, and never depends on the simulators \
              (not even in its tests)",
    },
    Rule {
        package: "fleet-sim",
        forbidden: &["fleet-core", "fleet-drivers", "fleet-exporter"],
        dev: true,
        why: "a simulator is written from the API documents and shares no code with the \
              drivers (not even in its tests)",
    },
];

/// One resolved dependency edge.
struct Dep {
    to: String,
    /// A normal or build dependency (on some platform).
    normal_or_build: bool,
    /// A dev-dependency (on some platform).
    dev: bool,
}

/// The resolved graph: package id → (name, dependencies).
#[derive(Default)]
struct Graph {
    names: BTreeMap<String, String>,
    deps: BTreeMap<String, Vec<Dep>>,
}

impl Graph {
    fn from_metadata(meta: &Value) -> Graph {
        let mut g = Graph::default();
        for p in meta["packages"].as_array().expect("metadata: packages") {
            g.names.insert(
                p["id"].as_str().expect("package id").to_string(),
                p["name"].as_str().expect("package name").to_string(),
            );
        }
        let nodes = meta["resolve"]["nodes"]
            .as_array()
            .expect("metadata: resolve.nodes");
        for node in nodes {
            let id = node["id"].as_str().expect("node id").to_string();
            let mut deps = Vec::new();
            for d in node["deps"].as_array().expect("node deps") {
                let kinds: Vec<Option<&str>> = d["dep_kinds"]
                    .as_array()
                    .expect("dep_kinds")
                    .iter()
                    .map(|k| k["kind"].as_str())
                    .collect();
                deps.push(Dep {
                    to: d["pkg"].as_str().expect("dep pkg").to_string(),
                    normal_or_build: kinds.iter().any(|k| matches!(k, None | Some("build"))),
                    dev: kinds.contains(&Some("dev")),
                });
            }
            g.deps.insert(id, deps);
        }
        g
    }

    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }

    /// One line per forbidden package `rule.package` reaches, with the shortest chain to it.
    fn violations(&self, rule: &Rule) -> Vec<String> {
        let roots: Vec<&String> = self
            .names
            .iter()
            .filter(|(id, name)| *name == rule.package && self.deps.contains_key(*id))
            .map(|(id, _)| id)
            .collect();
        assert!(
            !roots.is_empty(),
            "package {} is not in the resolved graph",
            rule.package
        );
        let mut out = Vec::new();
        for root in roots {
            // Breadth first, so the chain reported is a shortest one.
            let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
            let mut queue = VecDeque::from([root.as_str()]);
            while let Some(at) = queue.pop_front() {
                for d in self.deps.get(at).into_iter().flatten() {
                    let follow = d.normal_or_build || (rule.dev && at == root && d.dev);
                    if follow && d.to != *root && !parent.contains_key(d.to.as_str()) {
                        parent.insert(&d.to, at);
                        queue.push_back(&d.to);
                    }
                }
            }
            for (&reached, _) in parent.iter() {
                if rule.forbidden.contains(&self.name(reached)) {
                    let mut chain = vec![self.name(reached)];
                    let mut at = reached;
                    while let Some(&p) = parent.get(at) {
                        chain.push(self.name(p));
                        at = p;
                    }
                    chain.reverse();
                    out.push(format!(
                        "{} depends on {}: {}",
                        rule.package,
                        self.name(reached),
                        chain.join(" → ")
                    ));
                }
            }
        }
        out
    }
}

/// `cargo metadata` for the workspace, every feature on (a rule holds under any features).
/// Offline first: the lock file and the local package cache are enough. When a package of
/// another platform was never downloaded, the graph is filtered to this host's platform; only
/// when both fail is the network tried.
fn cargo_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let manifest = Path::new(ROOT).join("Cargo.toml");
    let mut attempts: Vec<Vec<String>> = vec![vec!["--offline".into()]];
    if let Some(host) = host_triple(&cargo) {
        attempts.push(vec!["--offline".into(), "--filter-platform".into(), host]);
    }
    attempts.push(Vec::new());
    let mut failures = Vec::new();
    for extra in attempts {
        let out = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--all-features"])
            .arg("--manifest-path")
            .arg(&manifest)
            .args(&extra)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
        }
        failures.push(format!(
            "cargo metadata {}: {}",
            extra.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    panic!("cargo metadata failed:\n{}", failures.join("\n"));
}

fn host_triple(cargo: &str) -> Option<String> {
    let out = Command::new(cargo).arg("-vV").output().ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(|h| h.trim().to_string()))
}

#[test]
fn crates_depend_only_as_the_architecture_allows() {
    let graph = Graph::from_metadata(&cargo_metadata());
    // The graph was read: what must be there is there.
    let control = Rule {
        package: "fleet-drivers",
        forbidden: &["fleet-core", "reqwest"],
        dev: false,
        why: "",
    };
    assert_eq!(
        graph.violations(&control).len(),
        2,
        "fleet-drivers should reach fleet-core and reqwest in the resolved graph"
    );
    // proptest is only a dev-dependency of the root: seen with dev-dependencies, not without.
    // (rcgen was the example until the simulators' self-signed TLS made it a normal one.)
    let dev_only = |dev| Rule {
        package: "fleet-exporter",
        forbidden: &["proptest"],
        dev,
        why: "",
    };
    assert_eq!(
        graph.violations(&dev_only(true)).len(),
        1,
        "proptest as a dev-dependency"
    );
    assert!(
        graph.violations(&dev_only(false)).is_empty(),
        "proptest as a normal dependency"
    );
    let mut failures = Vec::new();
    for rule in RULES {
        for v in graph.violations(rule) {
            failures.push(format!("{v}\n    ({})", rule.why));
        }
    }
    assert!(
        failures.is_empty(),
        "dependency rules broken (see docs/architecture.md):\n{}",
        failures.join("\n")
    );
}

#[test]
fn dependency_check_follows_chains_and_dev_dependencies_only_where_asked() {
    // a → b → forbidden (normal); a ⇢ c (dev) → forbidden2; b ⇢ forbidden2 (dev of b: ignored).
    let mut g = Graph::default();
    for n in ["a", "b", "c", "x", "y"] {
        g.names.insert(format!("id-{n}"), n.to_string());
    }
    let dep = |to: &str, normal_or_build, dev| Dep {
        to: format!("id-{to}"),
        normal_or_build,
        dev,
    };
    g.deps.insert(
        "id-a".into(),
        vec![dep("b", true, false), dep("c", false, true)],
    );
    g.deps.insert(
        "id-b".into(),
        vec![dep("x", true, false), dep("y", false, true)],
    );
    g.deps.insert("id-c".into(), vec![dep("y", true, false)]);
    let rule = |dev| Rule {
        package: "a",
        forbidden: &["x", "y"],
        dev,
        why: "",
    };
    assert_eq!(g.violations(&rule(false)), ["a depends on x: a → b → x"]);
    assert_eq!(
        g.violations(&rule(true)),
        ["a depends on x: a → b → x", "a depends on y: a → c → y"]
    );
}

// ─── 2. The core names no device kind ───────────────────────────────────────────────────────

/// The device kinds: the registry's names, and the four the workspace started with (so the
/// check still means something if the registry could not be read).
fn kind_names() -> BTreeSet<String> {
    fleet_drivers::KINDS
        .iter()
        .map(|k| k.name)
        .chain(["ikuai", "komari", "openvox", "iot"])
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The words of `line`, lowercased: runs of ASCII letters and digits (so `_`, `-`, `::` and
/// spaces separate words, and `iot_devices` holds the word `iot`), and also the humps of a
/// camel-case run (`IkuaiDriver` holds `ikuai`). `IoT` is one word; `idiot` holds no `iot`.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in line
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|r| !r.is_empty())
    {
        out.push(run.to_ascii_lowercase());
        let b = run.as_bytes();
        let mut start = 0;
        for i in 1..b.len() {
            if b[i].is_ascii_uppercase()
                && (b[i - 1].is_ascii_lowercase() || b[i - 1].is_ascii_digit())
            {
                out.push(run[start..i].to_ascii_lowercase());
                start = i;
            }
        }
        if start > 0 {
            out.push(run[start..].to_ascii_lowercase());
        }
    }
    out
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn fleet_core_names_no_device_kind() {
    let kinds = kind_names();
    let core = Path::new(ROOT).join("crates/fleet-core");
    let mut files = Vec::new();
    files_under(&core, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("src/lib.rs")),
        "no crates/fleet-core/src/lib.rs under {}",
        core.display()
    );
    let mut found = Vec::new();
    for file in &files {
        let text =
            String::from_utf8_lossy(&std::fs::read(file).expect("readable file")).into_owned();
        for (n, line) in text.lines().enumerate() {
            let named: BTreeSet<String> = words(line)
                .into_iter()
                .filter(|w| kinds.contains(w))
                .collect();
            if !named.is_empty() {
                let rel = file.strip_prefix(ROOT).unwrap_or(file);
                found.push(format!(
                    "{}:{}: {named:?}: {}",
                    rel.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "fleet-core must not name a device kind (the registry is a parameter; kinds live in \
         fleet-drivers):\n{}",
        found.join("\n")
    );
}

#[test]
fn kind_words_match_whole_words_only() {
    let kinds = kind_names();
    let named = |line: &str| -> Vec<String> {
        words(line)
            .into_iter()
            .filter(|w| kinds.contains(w))
            .collect()
    };
    assert_eq!(named("an IoT platform"), ["iot"]);
    assert_eq!(named("let iot_devices = fleet::Ikuai;"), ["iot", "ikuai"]);
    assert_eq!(named("struct KomariDriver"), ["komari"]);
    assert_eq!(named("kind = \"openvox\""), ["openvox"]);
    assert!(named("an idiot pilot: patriotic, IOTA, biotic").is_empty());
}

// ─── 3. No import cycle between sibling modules ────────────────────────────────────────────
//
// The module graph: for every module P of a crate, the nodes are P's direct child modules, and
// there is an edge a → b when code in a (or in a descendant of a) names b (or a descendant of
// b) by a path: `use` trees, and paths in code, starting with `crate::`, `self::`, `super::`,
// or with a module name in scope (a child of the current module, or of a module glob-imported
// with `use …::*`). P naming its own children is containment, not an edge; naming an item of
// P itself (`super::Options`, `crate::KINDS`) is not an edge either. Every such graph must be
// acyclic.
//
// `#[cfg(test)] mod tests` and other test-only modules are included: a test module is a child
// like any other, and a test that reaches into a sibling couples the two just as production
// code does (neither can be moved or split without the other). Including them also keeps the
// parser free of `cfg` evaluation.
//
// Limits: a re-export (`pub use a::X` in P, used as `P::X` from b) is seen as naming P, not a;
// macros are read as their tokens; `#[path]` is not supported, and every `.rs` file under
// `src/` must be reached from a crate root (so a file the parser missed fails the test).

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Rust tokens, enough for paths and module structure: comments, string, char and byte
/// literals (raw ones too) are dropped; lifetimes are dropped; numbers are dropped.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    // Skips a quoted literal whose opening `"` is at `i`, with `hashes` `#`s for a raw one
    // (`None`: not raw, backslash escapes apply). Returns the index after it.
    let skip_string = |mut i: usize, hashes: Option<usize>, line: &mut usize| -> usize {
        i += 1;
        while i < c.len() {
            match c[i] {
                '\n' => *line += 1,
                '\\' if hashes.is_none() => {
                    if c.get(i + 1) == Some(&'\n') {
                        *line += 1;
                    }
                    i += 1;
                }
                '"' => {
                    let n = hashes.unwrap_or(0);
                    if (1..=n).all(|k| c.get(i + k) == Some(&'#')) {
                        return i + 1 + n;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(i, None, &mut line);
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\u{1F600}', '\'') or a lifetime / label ('a, 'static).
            if at(i + 1) == '\\' {
                // Past the quote, the backslash and the escaped character.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let prefix = matches!(word.as_str(), "r" | "b" | "br" | "c" | "cr");
            if prefix && at(i) == '"' {
                let raw = word.contains('r');
                i = skip_string(i, raw.then_some(0), &mut line);
            } else if prefix && word.contains('r') && at(i) == '#' {
                let mut n = 0;
                while at(i + n) == '#' {
                    n += 1;
                }
                if at(i + n) == '"' {
                    i = skip_string(i + n, Some(n), &mut line);
                } else if word == "r" && n == 1 {
                    // A raw identifier: r#type.
                    let start = i + 1;
                    i = start;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                    out.push((Tok::Ident(c[start..i].iter().collect()), line));
                } else {
                    out.push((Tok::Ident(word), line));
                }
            } else if word == "b" && at(i) == '\'' {
                // A byte literal: b'x', b'\n'.
                i += 1;
                if at(i) == '\\' {
                    i += 1;
                }
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::Path, line));
            i += 2;
        } else if ch == '$' && c[i + 1..].starts_with(&['c', 'r', 'a', 't', 'e']) {
            // `$crate` in a macro body is `crate`.
            i += 1;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

type ModPath = Vec<String>;

/// A path written in module `from`, resolved later once every module is known.
struct RawRef {
    from: ModPath,
    segments: Vec<String>,
    file: String,
    line: usize,
    /// A `use …::*`: the path names a module whose names come into scope.
    glob: bool,
}

/// A crate's modules and the paths its code writes.
#[derive(Default)]
struct Crate {
    modules: BTreeSet<ModPath>,
    refs: Vec<RawRef>,
    files: BTreeSet<PathBuf>,
}

/// Reads a crate from its root file; `read` gives a file's text (or `None` if it does not exist).
fn load_crate(root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Crate {
    let mut krate = Crate::default();
    krate.modules.insert(Vec::new());
    let dir = root
        .parent()
        .expect("crate root in a directory")
        .to_path_buf();
    let mut pending = vec![(root.to_path_buf(), Vec::new(), dir)];
    while let Some((file, module, child_dir)) = pending.pop() {
        let text = read(&file).unwrap_or_else(|| panic!("cannot read {}", file.display()));
        krate.files.insert(file.clone());
        for (name, module, child_dir) in scan_file(&text, &file, module, child_dir, &mut krate) {
            let flat = child_dir.join(format!("{name}.rs"));
            let nested = child_dir.join(&name).join("mod.rs");
            let (path, dir) = if read(&flat).is_some() {
                (flat, child_dir.join(&name))
            } else if read(&nested).is_some() {
                (nested, child_dir.join(&name))
            } else {
                panic!(
                    "{}: `mod {name};` but neither {} nor {} exists",
                    file.display(),
                    flat.display(),
                    nested.display()
                );
            };
            pending.push((path, module, dir));
        }
    }
    krate
}

/// Records the modules and paths of one file whose top is module `module`, with child files of
/// that module in `dir`. Returns the `mod name;` declarations as (name, module, its dir).
fn scan_file(
    text: &str,
    file: &Path,
    module: ModPath,
    dir: PathBuf,
    krate: &mut Crate,
) -> Vec<(String, ModPath, PathBuf)> {
    let toks = tokenize(text);
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: &Tok| toks.get(i).map(|(x, _)| x) == Some(t);
    let file_name = file
        .strip_prefix(ROOT)
        .unwrap_or(file)
        .display()
        .to_string();
    // Inline modules open: (module, its child dir, brace depth inside it).
    let mut stack: Vec<(ModPath, PathBuf, usize)> = vec![(module, dir, 0)];
    let mut depth = 0;
    let mut declared = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        let (current, current_dir, _) = stack.last().expect("module stack").clone();
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                while stack.len() > 1 && stack.last().is_some_and(|(_, _, d)| *d > depth) {
                    stack.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let Some(name) = ident(i + 1) {
                    let mut child = current.clone();
                    child.push(name.to_string());
                    krate.modules.insert(child.clone());
                    if is(i + 2, &Tok::Punct(';')) {
                        declared.push((name.to_string(), child, current_dir.clone()));
                    } else if is(i + 2, &Tok::Punct('{')) {
                        depth += 1;
                        stack.push((child, current_dir.join(name), depth));
                        i += 3;
                        continue;
                    }
                }
            }
            // A path starts here unless it continues one (`a::b`) or follows a method call's
            // dot (`x.parse::<T>()`).
            Tok::Ident(_)
                if is(i + 1, &Tok::Path)
                    && !(i > 0 && (is(i - 1, &Tok::Path) || is(i - 1, &Tok::Punct('.')))) =>
            {
                let in_use = i > 0 && ident(i - 1) == Some("use");
                let mut paths = Vec::new();
                i = parse_tree(&toks, i, Vec::new(), &mut paths);
                for (segments, glob) in paths {
                    krate.refs.push(RawRef {
                        from: current.clone(),
                        segments,
                        file: file_name.clone(),
                        line: *line,
                        glob: glob && in_use,
                    });
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    declared
}

/// Reads a path or use tree at `i` (`a::b::{c, d::*}`), appending each full path under `prefix`
/// to `out` (with whether it ends in `*`). Returns the index after it.
fn parse_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, bool)>,
) -> usize {
    loop {
        match toks.get(i).map(|(t, _)| t) {
            Some(Tok::Ident(s)) => {
                prefix.push(s.clone());
                i += 1;
            }
            Some(Tok::Punct('*')) => {
                out.push((prefix, true));
                return i + 1;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                while let Some((t, _)) = toks.get(i) {
                    match t {
                        Tok::Punct('}') => return i + 1,
                        Tok::Punct(',') => i += 1,
                        Tok::Ident(_) | Tok::Punct('*') | Tok::Punct('{') => {
                            let before = i;
                            i = parse_tree(toks, i, prefix.clone(), out);
                            // `as name` renames: skip them.
                            if matches!(toks.get(i), Some((Tok::Ident(k), _)) if k == "as") {
                                i += 2;
                            }
                            if i == before {
                                i += 1;
                            }
                        }
                        _ => return i,
                    }
                }
                return i;
            }
            _ => {
                if !prefix.is_empty() {
                    out.push((prefix, false));
                }
                return i;
            }
        }
        if matches!(toks.get(i), Some((Tok::Path, _))) {
            i += 1;
        } else {
            out.push((prefix, false));
            return i;
        }
    }
}

/// The module path `segments`, written in module `from`, names (module part and all), or
/// `None` if it names no module of this crate (another crate, a local type, a variable).
fn resolve(
    krate: &Crate,
    globs: &BTreeMap<ModPath, Vec<ModPath>>,
    from: &[String],
    segments: &[String],
) -> Option<ModPath> {
    let (first, rest) = segments.split_first()?;
    let mut base: ModPath = match first.as_str() {
        "crate" => Vec::new(),
        "self" => from.to_vec(),
        "super" => from.get(..from.len().checked_sub(1)?)?.to_vec(),
        name => {
            let mut child = from.to_vec();
            child.push(name.to_string());
            if krate.modules.contains(&child) {
                child
            } else {
                // A child of a glob-imported module, if exactly that is in scope.
                globs.get(from).into_iter().flatten().find_map(|g| {
                    let mut c = g.clone();
                    c.push(name.to_string());
                    krate.modules.contains(&c).then_some(c)
                })?
            }
        }
    };
    for s in rest {
        match s.as_str() {
            "super" => {
                base.pop()?;
            }
            "self" => {}
            name => base.push(name.to_string()),
        }
    }
    Some(base)
}

/// Edges of the sibling graphs: parent → (a → b → where a names b).
type Edges = BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, Vec<String>>>>;

fn module_edges(krate: &Crate) -> Edges {
    let mut globs: BTreeMap<ModPath, Vec<ModPath>> = BTreeMap::new();
    for r in krate.refs.iter().filter(|r| r.glob) {
        if let Some(target) = resolve(krate, &BTreeMap::new(), &r.from, &r.segments) {
            globs.entry(r.from.clone()).or_default().push(target);
        }
    }
    let mut edges = Edges::new();
    for r in &krate.refs {
        let Some(target) = resolve(krate, &globs, &r.from, &r.segments) else {
            continue;
        };
        let common = r
            .from
            .iter()
            .zip(&target)
            .take_while(|(a, b)| a == b)
            .count();
        if common == r.from.len() || common == target.len() {
            continue; // a module naming itself, a descendant or an ancestor: containment
        }
        let parent = r.from[..common].to_vec();
        let mut child = parent.clone();
        child.push(target[common].clone());
        if !krate.modules.contains(&child) {
            continue; // an item of the common parent, not a sibling module
        }
        edges
            .entry(parent)
            .or_default()
            .entry(r.from[common].clone())
            .or_default()
            .entry(target[common].clone())
            .or_default()
            .push(format!("{}:{} `{}`", r.file, r.line, r.segments.join("::")));
    }
    edges
}

/// Every cycle of the sibling graphs, as its modules in order, each edge with where it is made.
fn cycles(edges: &Edges) -> Vec<String> {
    let mut out = Vec::new();
    for (parent, graph) in edges {
        for component in strongly_connected(graph) {
            let cycle = cycle_in(graph, &component);
            let parent_name = if parent.is_empty() {
                "the crate root".to_string()
            } else {
                parent.join("::")
            };
            let mut text = format!("under {parent_name}: {}", cycle.join(" → "));
            for pair in cycle.windows(2) {
                let evidence = &graph[&pair[0]][&pair[1]];
                text.push_str(&format!(
                    "\n    {} → {}: {}",
                    pair[0],
                    pair[1],
                    evidence.join(", ")
                ));
            }
            out.push(text);
        }
    }
    out
}

/// Strongly connected components with more than one module (Tarjan).
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// A cycle through the component's first module, as `[a, b, …, a]`.
fn cycle_in(
    graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    component: &[String],
) -> Vec<String> {
    let start = &component[0];
    let members: BTreeSet<&String> = component.iter().collect();
    // Breadth first from `start` inside the component, back to `start`.
    let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in graph.get(at).into_iter().flat_map(|m| m.keys()) {
            if !members.contains(next) {
                continue;
            }
            if next == start {
                let mut cycle = vec![start.clone()];
                let mut p = at;
                while p != start {
                    cycle.push(p.clone());
                    p = parent[p];
                }
                cycle.push(start.clone());
                cycle.reverse();
                return cycle;
            }
            if !parent.contains_key(next) {
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    unreachable!("a strongly connected component of two or more has a cycle")
}

/// The crate roots of a package: its library, its binary, and `src/bin/*.rs`.
fn crate_roots(package: &Path) -> Vec<PathBuf> {
    let src = package.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = bins.map(|e| e.expect("entry").path()).collect();
        bins.sort();
        roots.extend(
            bins.into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "rs")),
        );
    }
    roots
}

fn packages() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from(ROOT)];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("crates"))
        .expect("crates/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    out.extend(crates);
    out
}

#[test]
fn no_crate_has_an_import_cycle_between_sibling_modules() {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let mut failures = Vec::new();
    let mut unreached = Vec::new();
    let mut crates = 0;
    for package in packages() {
        let mut reached = BTreeSet::new();
        for root in crate_roots(&package) {
            crates += 1;
            let krate = load_crate(&root, &read);
            let rel = root
                .strip_prefix(ROOT)
                .unwrap_or(&root)
                .display()
                .to_string();
            for cycle in cycles(&module_edges(&krate)) {
                failures.push(format!("{rel}: {cycle}"));
            }
            reached.extend(krate.files);
        }
        let mut files = Vec::new();
        files_under(&package.join("src"), &mut files);
        unreached.extend(
            files
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "rs") && !reached.contains(f)),
        );
    }
    assert!(crates >= 4, "found only {crates} crate roots");
    assert!(
        unreached.is_empty(),
        "these files belong to no module reached from a crate root (a `#[path]`, or a file \
         left behind?), so their imports went unchecked: {unreached:?}"
    );
    assert!(
        failures.is_empty(),
        "import cycles between sibling modules (a module's code, or its descendants', names a \
         sibling that names it back); move the shared part into its own module, or let one \
         side stop naming the other:\n{}",
        failures.join("\n")
    );
}

/// A crate made of in-memory files, read from `/c/src/lib.rs`.
fn fake_crate(files: &[(&str, &str)]) -> Crate {
    let files: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(p, t)| (Path::new("/c/src").join(p), t.to_string()))
        .collect();
    load_crate(Path::new("/c/src/lib.rs"), &|p| files.get(p).cloned())
}

#[test]
fn cycle_check_catches_a_cycle_between_siblings_through_descendants() {
    // a::inner names b; b's test module names a through super::super.
    let krate = fake_crate(&[
        ("lib.rs", "pub mod a;\nmod b;\nmod c { pub fn f() {} }\n"),
        ("a/mod.rs", "mod inner;\n"),
        ("a/inner.rs", "use crate::b::{self, Thing as T};\n"),
        (
            "b.rs",
            "pub struct Thing;\n#[cfg(test)]\nmod tests {\n    use super::super::a::inner;\n}\n",
        ),
    ]);
    let found = cycles(&module_edges(&krate));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("under the crate root: a → b → a"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("/c/src/a/inner.rs:1 `crate::b::self`"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("/c/src/b.rs:4 `super::super::a::inner`"),
        "{}",
        found[0]
    );
}

#[test]
fn cycle_check_finds_a_longer_cycle_and_resolves_glob_imports() {
    // x → y (crate::), y → z (bare name of a glob-imported module), z → x (super::).
    let krate = fake_crate(&[
        ("lib.rs", "mod x; mod y; mod z;"),
        ("x.rs", "fn f() { crate::y::g(); }"),
        ("y.rs", "use super::*;\nfn g() { z::h() }"),
        ("z.rs", "use super::x;"),
    ]);
    let found = cycles(&module_edges(&krate));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("under the crate root: x → y → z → x"),
        "{}",
        found[0]
    );
}

#[test]
fn containment_items_of_the_parent_comments_and_strings_make_no_edge() {
    let krate = fake_crate(&[
        (
            "lib.rs",
            "pub mod a; pub mod b;\npub static ALL: &[u8] = &[a::X, b::Y];\n",
        ),
        ("a.rs", "use crate::b::Y;\npub const X: u8 = Y;\n"),
        (
            "b.rs",
            r####"
            pub const Y: u8 = crate::ALL.len() as u8; // crate::a::X
            /* crate::a::X /* nested */ crate::a::X */
            const S: &str = "crate::a::X \" crate::a::X";
            const R: &str = r#"crate::a::X " crate::a::X"#;
            const C: char = '"'; const Q: char = '\''; fn f<'a>(s: &'a str) -> &'a str { s }
            const B: &[u8] = b"crate::a::X"; const E: u8 = b'"';
            "####,
        ),
    ]);
    let edges = module_edges(&krate);
    let root = &edges[&Vec::<String>::new()];
    assert_eq!(root.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(root["a"].keys().collect::<Vec<_>>(), ["b"]);
    assert!(cycles(&edges).is_empty());
}
