//! Private Linux namespaces for tests that need a process tree or mounts of their own:
//! `unshare --user --map-root-user` needs no root where user namespaces are allowed. Where none
//! can be made the test warns and returns, unless `FLEET_TEST_REQUIRE_NAMESPACE` is set (CI sets
//! it), when it fails.

use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) const REQUIRE_ENV: &str = "FLEET_TEST_REQUIRE_NAMESPACE";

/// Whether `unshare` with `args` works here. `false` (after a warning) means the caller returns;
/// when namespaces are required, it panics with the reason instead.
pub(crate) fn available(args: &[&str], what: &str) -> bool {
    let probe = Command::new("unshare").args(args).arg("true").output();
    let why = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        Err(e) => format!("unshare: {e}"),
    };
    assert!(
        std::env::var_os(REQUIRE_ENV).is_none(),
        "{REQUIRE_ENV} is set but `unshare {}` fails: {why}",
        args.join(" ")
    );
    eprintln!(
        "WARNING: {what} is not checked: unshare {}: {why}",
        args.join(" ")
    );
    false
}

/// Runs this test binary's `test` again under `unshare args`, with `marker` set in its
/// environment so the run inside knows where it is; panics with its output when it fails.
pub(crate) fn rerun_inside(args: &[&str], test: &str, marker: &str) {
    rerun_inside_with(args, test, marker, "1");
}

/// [`rerun_inside`], with `marker` set to `value` (a path the run inside needs, say).
pub(crate) fn rerun_inside_with(
    args: &[&str],
    test: &str,
    marker: &str,
    value: impl AsRef<std::ffi::OsStr>,
) {
    let out = Command::new("unshare")
        .args(args)
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(marker, value)
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "in the namespace:\n{output}");
    eprintln!("{output}");
}

/// The only child of `parent`, once it has one: the host's pid of the process `unshare --fork`
/// started, PID 1 of its namespace.
pub(crate) fn child_of(parent: u32) -> u32 {
    let start = Instant::now();
    loop {
        let children: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid| ppid(*pid) == Some(parent))
            .collect();
        if let [child] = children[..] {
            return child;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{parent} has children {children:?}, not one"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ppid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}
