//! The seam between the core and the device drivers.
//!
//! The core knows a driver only through [`Driver`] and the [`KINDS`] registry: a new device kind
//! is one folder here, one simulator under `sim/`, and one line in [`KINDS`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::TargetSpec;
use crate::snapshot::{Family, Snapshot, SnapshotBuilder};

pub mod http;
pub mod ikuai;
pub mod iot;
pub mod komari;
pub mod lenient;
pub mod openvox;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls one device. A driver owns its session state (cookies, tokens) across polls; the
/// scheduler owns the timing and cancels a poll that overruns its deadline.
pub trait Driver: Send {
    fn poll<'a>(
        &'a mut self,
        ctx: &'a mut PollContext,
    ) -> BoxFuture<'a, Result<Snapshot, PollError>>;
}

/// Builds a fresh driver for a (re)started poller.
pub type DriverFactory = Arc<dyn Fn() -> Box<dyn Driver> + Send + Sync>;

/// What a poll reports besides its snapshot.
#[derive(Debug)]
pub struct PollContext {
    target: Arc<str>,
    /// Logins the driver made during this poll.
    pub logins: u32,
    /// Sections that failed while the poll as a whole produced a snapshot.
    pub partial_errors: Vec<PollError>,
}

impl PollContext {
    pub fn new(target: Arc<str>) -> Self {
        PollContext {
            target,
            logins: 0,
            partial_errors: Vec::new(),
        }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// A builder whose samples carry this target's `target` label.
    pub fn snapshot_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder::new(Some(&self.target))
    }
}

/// Why a poll (or a part of one) failed. The messages are shown on the status page and in logs,
/// so they never carry a request body, a URL with credentials, or a secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PollError {
    #[error("poll timed out")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("HTTP error: {0}")]
    Http(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("device API error: {0}")]
    Api(String),
    #[error("cannot decode answer: {0}")]
    Decode(String),
}

impl PollError {
    /// The `reason` label of `fleet_target_poll_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            PollError::Timeout => "timeout",
            PollError::Connect(_) => "connect",
            PollError::Http(_) => "http",
            PollError::Auth(_) => "auth",
            PollError::Api(_) => "api",
            PollError::Decode(_) => "decode",
        }
    }

    /// Every reason, so error counters start at zero and `rate()` sees the first error.
    pub const REASONS: [&'static str; 6] = ["timeout", "connect", "http", "auth", "api", "decode"];
}

/// Tallies the sections of one poll: a failure that says the device as a whole cannot be polled
/// now ends the poll, the others cost one section, and a poll in which every section failed
/// fails with the first error.
#[derive(Debug, Default)]
pub struct Sections {
    succeeded: usize,
    failed: Vec<PollError>,
}

impl Sections {
    /// Records a section's outcome; `Err` means the poll must stop with that error.
    pub fn record(&mut self, result: Result<(), PollError>) -> Result<(), PollError> {
        match result {
            Ok(()) => self.succeeded += 1,
            Err(
                e @ (PollError::Timeout
                | PollError::Connect(_)
                | PollError::Auth(_)
                | PollError::Http(_)),
            ) => return Err(e),
            Err(e) => self.failed.push(e),
        }
        Ok(())
    }

    /// Moves the failed sections into `ctx` as partial errors, unless none succeeded.
    pub fn finish(mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        if self.succeeded == 0 && !self.failed.is_empty() {
            return Err(self.failed.remove(0));
        }
        ctx.partial_errors.extend(self.failed);
        Ok(())
    }
}

/// A device kind the config can name.
pub struct Kind {
    pub name: &'static str,
    /// Option keys holding secrets: each may also be given as `<key>_file`, which the config
    /// loader reads (and re-reads on reload) before the driver sees the options.
    pub secret_keys: &'static [&'static str],
    /// Every family the driver can emit (docs/metrics.md is checked against these).
    pub families: &'static [&'static Family],
    /// Checks a target's options and returns how to build its driver; errors name the key.
    pub configure: fn(&TargetSpec) -> Result<DriverFactory, String>,
}

/// Every device kind, by the name used in `kind = "..."`.
pub static KINDS: &[Kind] = &[ikuai::KIND, iot::KIND, komari::KIND, openvox::KIND];

/// Lowercase hex of a text's MD5, the password hash several device logins expect.
pub fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// What drivers' fixture tests share.
#[cfg(test)]
pub(crate) mod testing {
    use crate::exposition::{render, Format};
    use crate::snapshot::SnapshotBuilder;

    /// The text exposition of the samples `fill` adds for `target`.
    pub fn exposition(target: &str, fill: impl FnOnce(&mut SnapshotBuilder)) -> String {
        let mut b = SnapshotBuilder::new(Some(target));
        fill(&mut b);
        String::from_utf8(render(Format::Text, [&b.finish()])).expect("UTF-8 exposition")
    }

    /// A saved device answer from `tests/fixtures/<kind>/<name>`.
    pub fn fixture(kind: &str, name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/{kind}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Whether `text` has exactly this line.
    pub fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    /// The `Debug` text of a one-target config of `kind` with these option lines, and the
    /// target's spec, for redaction checks.
    pub fn config_debug(kind: &str, options: &str) -> (String, crate::config::TargetSpec) {
        let text = format!(
            "[[targets]]\nname = \"t\"\nkind = \"{kind}\"\nurl = \"https://d.example\"\n{options}\n"
        );
        let config = crate::config::Config::parse(
            &text,
            crate::config::FileFormat::Toml,
            std::path::Path::new("."),
        )
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let spec = (*config.targets[0].spec).clone();
        (format!("{config:?}"), spec)
    }

    /// Fails when `debug` shows `secret` or the MD5 a device login derives from it.
    pub fn assert_redacted(debug: &str, secret: &str) {
        for form in [secret.to_string(), super::md5_hex(secret)] {
            assert!(!debug.contains(&form), "{form:?} shown in {debug}");
        }
    }
}
