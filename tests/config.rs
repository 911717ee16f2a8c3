//! Config loading with the real registry of kinds: what operators' files meet.

use std::path::Path;
use std::time::Duration;

use fleet_core::config::{Config, FileFormat, DEFAULT_LISTEN};
use fleet_drivers::KINDS;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, FileFormat::Toml, Path::new("/nonexistent"), KINDS)
        .map_err(|e| e.to_string())
}

const ONE: &str = r#"
[[targets]]
name = "hq"
kind = "ikuai"
url = "http://192.0.2.1"
password = "pw"
"#;

#[test]
fn defaults_apply() {
    let c = parse(ONE).unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    let t = &c.targets[0].spec;
    assert_eq!(
        (t.interval, t.timeout),
        (Duration::from_secs(30), Duration::from_secs(10))
    );
    assert!(
        !format!("{:?}", c).contains("pw"),
        "secrets must not show in Debug"
    );
}

#[test]
fn errors_name_the_target_and_key() {
    let typo = ONE.replace("password =", "pasword =");
    let e = parse(&typo).unwrap_err();
    assert!(e.contains("target \"hq\"") && e.contains("pasword"), "{e}");

    let e = parse(&format!("{ONE}\n{ONE}")).unwrap_err();
    assert!(
        e.contains("targets[1].name") && e.contains("duplicate"),
        "{e}"
    );

    let e = parse(&ONE.replace("ikuai", "cisco")).unwrap_err();
    assert!(
        e.contains("target \"hq\".kind") && e.contains("known: ikuai"),
        "{e}"
    );

    let e = parse(&ONE.replace("http://192.0.2.1", "not a url")).unwrap_err();
    assert!(e.contains("target \"hq\".url"), "{e}");

    let e = parse(&format!("{ONE}interval = \"5s\"\ntimeout = \"5s\"\n")).unwrap_err();
    assert!(
        e.contains("target \"hq\".timeout") && e.contains("below the interval"),
        "{e}"
    );

    let e = parse(&format!("[server]\nlisten = \"nope\"\n{ONE}")).unwrap_err();
    assert!(e.contains("server.listen"), "{e}");

    let e = parse(&format!("[defaults]\nintervall = \"5s\"\n{ONE}")).unwrap_err();
    assert!(e.contains("intervall"), "{e}");

    let e = parse(&ONE.replace(
        "password = \"pw\"",
        "password = \"${FLEET_TEST_UNSET_VAR}\"",
    ))
    .unwrap_err();
    assert!(
        e.contains("target \"hq\".password") && e.contains("FLEET_TEST_UNSET_VAR"),
        "{e}"
    );
    assert!(!e.contains("pw\""), "{e}");
}

#[test]
fn an_inherited_timeout_is_shortened_to_fit_a_shorter_interval() {
    let timeout = |text: &str| parse(text).map(|c| c.targets[0].spec.timeout);
    // The built-in 10 s, for a target polled every 5 s: 90% of its interval.
    let five = format!("{ONE}interval = \"5s\"\n");
    assert_eq!(timeout(&five), Ok(Duration::from_millis(4500)));
    // `[defaults]`' own timeout, for a target with an interval of its own.
    let inherited = format!("[defaults]\ntimeout = \"20s\"\n{ONE}interval = \"10s\"\n");
    assert_eq!(timeout(&inherited), Ok(Duration::from_secs(9)));
    // One that fits is kept as it is.
    let fits = format!("[defaults]\ntimeout = \"20s\"\n{ONE}interval = \"1m\"\n");
    assert_eq!(timeout(&fits), Ok(Duration::from_secs(20)));
}

#[test]
fn a_timeout_someone_wrote_that_does_not_fit_is_refused_where_it_was_written() {
    let e = parse(&format!("[defaults]\ntimeout = \"2m\"\n{ONE}")).unwrap_err();
    assert!(
        e.contains("defaults.timeout") && e.contains("below the interval (120s >= 30s)"),
        "{e}"
    );
    assert!(
        !e.contains("target \"hq\""),
        "the target set no timeout: {e}"
    );
    let e = parse(&format!(
        "[defaults]\ninterval = \"1m\"\n{ONE}timeout = \"1m\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("target \"hq\".timeout"), "{e}");
}

#[test]
fn secrets_from_files_and_environment() {
    let dir = std::env::temp_dir().join(format!("fleet-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pw"), "from-file\n").unwrap();
    let text = ONE.replace("password = \"pw\"", "password_file = \"pw\"");
    let c = Config::parse(&text, FileFormat::Toml, &dir, KINDS).unwrap();
    assert_eq!(c.targets[0].spec.options["password"], "from-file");

    std::env::set_var("FLEET_TEST_PW", "from-env");
    let text = ONE.replace("password = \"pw\"", "password = \"x-${FLEET_TEST_PW}\"");
    let c = parse(&text).unwrap();
    assert_eq!(c.targets[0].spec.options["password"], "x-from-env");

    let both = ONE.replace(
        "password = \"pw\"",
        "password = \"a\"\npassword_file = \"pw\"",
    );
    let e = Config::parse(&both, FileFormat::Toml, &dir, KINDS)
        .unwrap_err()
        .to_string();
    assert!(e.contains("password_file") && e.contains("not both"), "{e}");
    let missing = ONE.replace("password = \"pw\"", "password_file = \"missing\"");
    let e = Config::parse(&missing, FileFormat::Toml, &dir, KINDS)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("target \"hq\".password_file") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn yaml_works_too() {
    let yaml = "defaults:\n  interval: 1m\ntargets:\n  - name: hq\n    kind: ikuai\n    url: https://r.example\n    password: pw\n    max_clients: 10\n";
    let c = Config::parse(yaml, FileFormat::Yaml, Path::new("."), KINDS).unwrap();
    assert_eq!(c.targets[0].spec.interval, Duration::from_secs(60));
    assert_eq!(c.targets[0].spec.options["max_clients"], 10);
}

#[test]
fn a_target_without_a_usable_name_is_named_by_its_index() {
    let e = parse(&ONE.replace("name = \"hq\"", "")).unwrap_err();
    assert!(e.contains("targets[0]") && e.contains("name"), "{e}");
    let e = parse(&ONE.replace("name = \"hq\"", "name = 5")).unwrap_err();
    assert!(e.contains("targets[0].name"), "{e}");
    let e = parse(&format!(
        "{ONE}\n{}",
        ONE.replace("name = \"hq\"", "name = \" \"")
    ))
    .unwrap_err();
    assert!(
        e.contains("targets[1].name") && e.contains("non-empty"),
        "{e}"
    );
}

#[test]
fn duration_errors_name_the_key() {
    let e = parse(&format!("{ONE}interval = \"10 parsecs\"\n")).unwrap_err();
    assert!(
        e.contains("target \"hq\".interval") && e.contains("parsecs"),
        "{e}"
    );
    let e = parse(&format!("[defaults]\ninterval = \"0s\"\n{ONE}")).unwrap_err();
    assert!(
        e.contains("defaults.interval") && e.contains("above zero"),
        "{e}"
    );
    let e = parse(&format!(
        "{ONE}backoff_max = \"18446744073709551615s18446744073709551615s\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("target \"hq\".backoff_max"), "{e}");
    let e = parse(&ONE.replace("kind = \"ikuai\"", "kind = 3")).unwrap_err();
    assert!(e.contains("target \"hq\".kind"), "{e}");
}

#[test]
fn common_keys_stay_out_of_driver_options() {
    let c = parse(&format!(
        "{ONE}interval = 60\ntimeout = \"5s\"\nbackoff_max = \"10m\"\n"
    ))
    .unwrap();
    let t = &c.targets[0].spec;
    assert_eq!(t.interval, Duration::from_secs(60));
    assert_eq!(t.backoff_max, Duration::from_secs(600));
    let keys: Vec<_> = t.options.keys().map(String::as_str).collect();
    assert_eq!(keys, ["password"]);
}

#[test]
fn an_unknown_kind_is_reported_before_missing_keys() {
    let e = parse("[[targets]]\nname = \"a\"\nkind = \"nope\"\n").unwrap_err();
    assert!(e.contains("target \"a\".kind"), "{e}");
    let e = parse("[[targets]]\nname = \"a\"\nkind = \"ikuai\"\n").unwrap_err();
    assert!(e.contains("target \"a\"") && e.contains("url"), "{e}");
}

#[test]
fn a_shard_in_the_server_section_parses_and_a_bad_one_names_the_key() {
    let c = parse(&format!("[server]\nshard = \"fleet-exporter-1/3\"\n{ONE}")).unwrap();
    assert_eq!(c.shard.map(|s| s.to_string()).as_deref(), Some("1/3"));
    assert_eq!(parse(ONE).unwrap().shard, None);
    for bad in ["3/3", "0/0", "a/b"] {
        let e = parse(&format!("[server]\nshard = \"{bad}\"\n{ONE}")).unwrap_err();
        assert!(e.starts_with("server.shard: "), "{bad}: {e}");
    }
    let e = parse(&format!("[server]\nshard = 1\n{ONE}")).unwrap_err();
    assert!(e.contains("server.shard"), "{e}");
}

/// The README says the example config shows every key: each key a kind accepts (as its driver's
/// own "expected one of" list names them) is in it, set or commented out, a secret as itself or
/// its `_file` form. A key added to a driver fails here until the example shows it.
#[test]
fn the_example_config_shows_every_key_each_kind_accepts() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/fleet-exporter.example.toml"
    ))
    .unwrap();
    let shown = |key: &str| {
        example.lines().any(|line| {
            let line = line.trim_start_matches('#').trim_start();
            line.starts_with(&format!("{key} ="))
                || line.starts_with(&format!("[targets.{key}]"))
                || line.starts_with(&format!("[[targets.{key}]]"))
        })
    };
    for kind in KINDS {
        let e = parse(&format!(
            "[[targets]]\nname = \"a\"\nkind = \"{}\"\nurl = \"http://192.0.2.1\"\nnot_a_key = 1\n",
            kind.name
        ))
        .unwrap_err();
        let (_, expected) = e
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("{}: {e}", kind.name));
        let keys: Vec<&str> = expected
            .split(", ")
            .map(|k| k.trim().trim_matches('`'))
            .collect();
        assert!(keys.len() > 5, "{}: {keys:?}", kind.name);
        let missing: Vec<&str> = keys
            .into_iter()
            .filter(|k| {
                let as_file = kind.secret_keys.contains(k) && shown(&format!("{k}_file"));
                !(shown(k) || as_file)
            })
            .collect();
        assert!(
            missing.is_empty(),
            "kind {}: config/fleet-exporter.example.toml does not show {missing:?}",
            kind.name
        );
    }
}
