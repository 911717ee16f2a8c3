//! docs/metrics.md is the metric reference users read: it must list exactly the families the
//! exporter emits in demo mode, with the same types and labels, and every family the code declares.
//!
//! The README's commands work as written on a fresh clone: every command of its `sh` blocks is
//! run there or, where running it takes what a test does not have (a build, a container
//! runtime, an installed system), checked for what it relies on; every repository path it names
//! exists; and the Rust version it asks for is Cargo.toml's `rust-version`, which is what the
//! locked dependencies need.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fleet_core::app::EXPORTER_FAMILIES;
use fleet_core::snapshot::{Family, MetricType};
use fleet_core::store::HEALTH_FAMILIES;
use fleet_drivers::KINDS;
use fleet_exporter::demo::Demo;
use fleet_exporter::self_metrics::SELF_FAMILIES;

type Families = BTreeMap<String, (String, Vec<String>)>;

/// Families in the doc's tables: `| `name` | type | labels | ...`, labels comma-separated.
fn documented() -> Families {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut out = Families::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty() && l != "—")
            .collect();
        assert!(
            out.insert(name.clone(), (cells[2].to_string(), labels))
                .is_none(),
            "{name} twice"
        );
    }
    out
}

/// Families in an exposition (text format): type from `# TYPE`, labels from the samples.
fn emitted(text: &str) -> Families {
    let mut out = Families::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(name.to_string(), (kind.to_string(), Vec::new()));
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let labels = out.get_mut(name).map(|f| &mut f.1).unwrap();
            if labels.is_empty() {
                if let Some(set) = line.split_once('{').and_then(|(_, r)| r.rsplit_once('}')) {
                    *labels = label_names(set.0);
                }
            }
        }
    }
    out
}

fn label_names(set: &str) -> Vec<String> {
    // Label values may contain commas and escaped quotes: walk the quoted strings.
    let mut names = Vec::new();
    let mut rest = set;
    while let Some((name, after)) = rest.split_once("=\"") {
        names.push(name.trim_start_matches(',').to_string());
        let mut escaped = false;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                let close = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                close
            })
            .map(|(i, _)| i)
            .unwrap();
        rest = &after[end + 1..];
    }
    names
}

fn declared(f: &Family) -> (String, (String, Vec<String>)) {
    let kind = match f.metric_type {
        MetricType::Gauge => "gauge",
        MetricType::Counter => "counter",
    };
    let labels = std::iter::once("target")
        .chain(f.labels.iter().copied())
        .map(String::from)
        .collect();
    (f.name.to_string(), (kind.to_string(), labels))
}

#[tokio::test]
async fn docs_match_the_demo_output_and_the_code() {
    let demo = Demo::start().await.unwrap();
    let exporter = common::start_exporter(&demo.config_text()).await;
    let targets = demo.config().unwrap().targets.len();
    let text = exporter
        .wait_for(Duration::from_secs(20), "every demo target up", |m| {
            let up: Vec<_> = m
                .lines()
                .filter(|l| l.starts_with("fleet_target_up{"))
                .collect();
            up.len() == targets && up.iter().all(|l| l.ends_with(" 1"))
        })
        .await;
    let doc = documented();
    let out = emitted(&text);
    let missing: Vec<_> = out.keys().filter(|k| !doc.contains_key(*k)).collect();
    let extra: Vec<_> = doc.keys().filter(|k| !out.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "emitted in demo mode but not in docs/metrics.md: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in docs/metrics.md but not emitted in demo mode: {extra:?}"
    );
    for (name, (kind, labels)) in &out {
        let (doc_kind, doc_labels) = &doc[name];
        assert_eq!(kind, doc_kind, "type of {name}");
        assert_eq!(labels, doc_labels, "labels of {name}");
    }
    let families = KINDS
        .iter()
        .flat_map(|k| k.families.iter())
        .chain(HEALTH_FAMILIES.iter())
        .copied();
    for f in families {
        let (name, (kind, labels)) = declared(f);
        assert_eq!(
            doc.get(&name),
            Some(&(kind, labels)),
            "declared family {name} vs docs"
        );
    }
    for f in EXPORTER_FAMILIES.iter().chain(SELF_FAMILIES.iter()) {
        assert!(doc.contains_key(f.name), "{} missing from docs", f.name);
    }
}

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a fresh clone holds: the files git tracks, copied to a scratch folder, so neither build
/// output nor an operator's copies (`config/fleet-exporter.toml`) can make a command pass.
fn fresh_clone(name: &str) -> PathBuf {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(ROOT)
        .output()
        .expect("git");
    assert!(out.status.success(), "git ls-files: {out:?}");
    let clone = common::temp_dir(name);
    for file in out.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let file = Path::new(std::str::from_utf8(file).unwrap());
        let from = Path::new(ROOT).join(file);
        if from.is_file() {
            let to = clone.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
    }
    clone
}

/// The commands of the README's `sh` blocks, in order: continuation lines joined, comments
/// dropped.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in readme.lines() {
        match line.trim() {
            "```sh" => in_block = true,
            "```" => in_block = false,
            _ if !in_block => {}
            text => {
                let text = match text.find(" #") {
                    Some(comment) => &text[..comment],
                    None if text.starts_with('#') => "",
                    None => text,
                };
                match text.trim_end().strip_suffix('\\') {
                    Some(start) => pending.push_str(start),
                    None => {
                        pending.push_str(text);
                        if !pending.trim().is_empty() {
                            commands.push(pending.trim().to_string());
                        }
                        pending.clear();
                    }
                }
            }
        }
    }
    commands
}

/// Runs `fleet-exporter` with `args` in `dir`; panics with its output unless it succeeds.
fn run_exporter(dir: &Path, args: &[String], env: &[(String, String)], what: &str) {
    let out = Command::new(common::binary::BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image's default arguments: the Dockerfile's last `CMD`, in JSON form.
fn image_cmd(clone: &Path) -> Vec<String> {
    let dockerfile = std::fs::read_to_string(clone.join("Dockerfile")).unwrap();
    let cmd = dockerfile
        .lines()
        .rfind(|l| l.starts_with("CMD "))
        .expect("a CMD in the Dockerfile");
    serde_json::from_str(&cmd["CMD ".len()..]).expect("CMD in JSON form")
}

/// `docker run ARGS`: the image's config file, read where the container would read it, from
/// the folders `-v` mounts, must pass `--config.check`.
fn check_docker_run(clone: &Path, words: &[String], command: &str) {
    let mut mounts = Vec::new();
    let mut rest = words[2..].iter();
    let mut image_args = None;
    while let Some(word) = rest.next() {
        match word.as_str() {
            "-v" | "--volume" => {
                let spec = rest.next().expect("a -v value");
                let mut parts = spec.split(':');
                let (host, container) = (parts.next().unwrap(), parts.next().unwrap());
                mounts.push((PathBuf::from(host), PathBuf::from(container)));
            }
            "-p" | "--publish" | "-e" | "--env" | "--name" => {
                rest.next();
            }
            flag if flag.starts_with('-') => {}
            _image => {
                image_args = Some(rest.cloned().collect::<Vec<_>>());
                break;
            }
        }
    }
    let args = match image_args {
        Some(args) if !args.is_empty() => args,
        _ => image_cmd(clone),
    };
    let config = args
        .iter()
        .find_map(|a| a.strip_prefix("--config.file="))
        .unwrap_or_else(|| panic!("`{command}`: which config does it read?"));
    let on_host = mounts
        .iter()
        .find_map(|(host, container)| {
            Path::new(config)
                .strip_prefix(container)
                .ok()
                .map(|inside| host.join(inside))
        })
        .unwrap_or_else(|| panic!("`{command}`: nothing is mounted where {config} is read"));
    run_exporter(
        clone,
        &[
            "--config.check".into(),
            format!("--config.file={}", on_host.display()),
        ],
        &[],
        command,
    );
}

/// Checks one README command in the clone, after the commands before it ran there.
fn check_command(clone: &Path, command: &str, help: &str) {
    let words = shlex::split(&command.replace("$PWD", clone.to_str().unwrap()))
        .unwrap_or_else(|| panic!("`{command}` does not parse"));
    let mut env = Vec::new();
    let mut words = &words[..];
    while let Some((name, value)) = words.first().and_then(|w| w.split_once('=')) {
        env.push((name.to_string(), value.to_string()));
        words = &words[1..];
    }
    let program = words[0].as_str();
    match program {
        "fleet-exporter" | "./target/release/fleet-exporter" => {
            let mut args = words[1..].to_vec();
            if args.iter().any(|a| a.contains("=/")) {
                // An installed exporter's paths: every flag and variable it uses must exist.
                for flag in args.iter().chain(env.iter().map(|(name, _)| name)) {
                    let name = flag.split('=').next().unwrap();
                    assert!(help.contains(name), "`{command}`: {name} is not in --help");
                }
                return;
            }
            if !args.iter().any(|a| a.starts_with("--config.check")) {
                // A server would run for ever: its config must load, as at its start.
                args.push("--config.check".into());
            }
            run_exporter(clone, &args, &env, command);
        }
        "cp" | "mkdir" | "chmod" => {
            let status = Command::new(program)
                .args(&words[1..])
                .current_dir(clone)
                .status()
                .unwrap();
            assert!(status.success(), "`{command}` failed");
        }
        // Builds take minutes and are what every other test stands on; their paths must exist.
        "cargo" => {
            for pair in words.windows(2) {
                if pair[0] == "--path" {
                    assert!(clone.join(&pair[1]).exists(), "`{command}`: no {}", pair[1]);
                }
            }
        }
        "docker" if words[1] == "build" => {
            assert!(
                clone.join("Dockerfile").is_file(),
                "`{command}`: no Dockerfile"
            );
        }
        "docker" if words[1] == "run" => check_docker_run(clone, words, command),
        "docker" if words[1] == "compose" => {
            assert!(
                clone.join("docker-compose.yml").is_file(),
                "`{command}`: no compose file"
            );
        }
        _ => panic!("`{command}`: tests/docs.rs does not know how to check it; teach it"),
    }
}

/// A fresh clone in which every README command was checked, in order; and the README.
fn clone_after_readme_commands(name: &str) -> (PathBuf, String) {
    let clone = fresh_clone(name);
    let readme = std::fs::read_to_string(clone.join("README.md")).unwrap();
    let help = Command::new(common::binary::BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands = readme_commands(&readme);
    assert!(commands.len() > 5, "{commands:?}");
    for command in &commands {
        check_command(&clone, command, &help);
    }
    (clone, readme)
}

#[test]
fn readme_commands_work_as_written_on_a_fresh_clone() {
    let (clone, _) = clone_after_readme_commands("docs-readme");
    std::fs::remove_dir_all(clone).ok();
}

#[test]
fn the_example_configs_validate_command_works_as_written_on_a_fresh_clone() {
    let clone = fresh_clone("docs-example");
    let example =
        std::fs::read_to_string(clone.join("config/fleet-exporter.example.toml")).unwrap();
    let command = example
        .lines()
        .find_map(|l| l.strip_prefix("#   fleet-exporter "))
        .expect("a validate command in the example's header");
    let args: Vec<String> = shlex::split(command).unwrap();
    assert!(args.contains(&"--config.check".to_string()), "{command}");
    run_exporter(&clone, &args, &[], command);
    std::fs::remove_dir_all(clone).ok();
}

/// Every relative path the README names in backticks or links, whose first folder is one of the
/// repository's, must exist after its commands ran (`config/fleet-exporter.toml` is made by one).
#[test]
fn every_repository_path_the_readme_names_exists() {
    let (clone, readme) = clone_after_readme_commands("docs-paths");
    let top: Vec<String> = std::fs::read_dir(&clone)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let quoted = readme.split('`').skip(1).step_by(2);
    let linked = readme
        .split("](")
        .skip(1)
        .filter_map(|s| s.split([')', '#']).next());
    let mut named = HashMap::new();
    for path in quoted.chain(linked) {
        let first = path.split('/').next().unwrap_or_default();
        let plain = !path.contains([' ', '<', '*', '$', ':', '=']) && path.contains('/');
        if plain && top.iter().any(|t| t == first) {
            named.insert(path.to_string(), clone.join(path).exists());
        }
    }
    let missing: Vec<_> = named
        .iter()
        .filter(|(_, there)| !**there)
        .map(|(p, _)| p)
        .collect();
    assert!(
        missing.is_empty(),
        "the README names paths that do not exist: {missing:?}"
    );
    assert!(named.len() > 10, "{named:?}");
    std::fs::remove_dir_all(clone).ok();
}

/// `rust-version` is the least the locked dependencies (for this platform) declare: lower and
/// `cargo build` fails on the oldest compiler it admits. (clippy's `incompatible_msrv` checks
/// our own code against it.) The README asks for the same version.
#[test]
fn rust_version_is_what_the_locked_dependencies_need_and_the_readme_says() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version=1", "--locked", "--offline"])
        .args(["--filter-platform", env!("FLEET_EXPORTER_TARGET")])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: Vec<&serde_json::Value> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let version = |v: &str| -> Vec<u64> { v.split('.').map(|n| n.parse().unwrap()).collect() };
    let needed = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !ours.contains(&&p["id"]))
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str()?)))
        .max()
        .unwrap();
    let declared = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fleet-exporter")
        .and_then(|p| p["rust_version"].as_str())
        .unwrap();
    assert_eq!(
        version(declared)[..2],
        needed.0[..2],
        "rust-version {declared}, but {} needs {:?}",
        needed.1,
        needed.0
    );
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {declared} or newer")),
        "the README asks for another Rust than {declared}"
    );
}
