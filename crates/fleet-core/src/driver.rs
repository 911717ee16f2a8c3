//! The contract between the core and the device drivers.
//!
//! The core knows a driver only through [`Driver`] and a registry of [`Kind`]s that the binary
//! passes in: the core never names a device kind.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::snapshot::{Family, Snapshot, SnapshotBuilder};
use crate::target::TargetSpec;

/// Polls one device. A driver owns its session state (cookies, tokens) across polls; the
/// scheduler owns the timing and cancels a poll that overruns its deadline.
pub trait Driver: Send + 'static {
    fn poll(
        &mut self,
        ctx: &mut PollContext,
    ) -> impl Future<Output = Result<Snapshot, PollError>> + Send;
}

/// A boxed poll future, so the scheduler can hold drivers of every kind alike.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Driver`] as an object: every driver is one through the blanket impl below.
pub trait DynDriver: Send {
    fn poll_boxed<'a>(
        &'a mut self,
        ctx: &'a mut PollContext,
    ) -> BoxFuture<'a, Result<Snapshot, PollError>>;
}

impl<D: Driver> DynDriver for D {
    fn poll_boxed<'a>(
        &'a mut self,
        ctx: &'a mut PollContext,
    ) -> BoxFuture<'a, Result<Snapshot, PollError>> {
        Box::pin(self.poll(ctx))
    }
}

/// Builds a fresh driver for a (re)started poller.
pub type DriverFactory = Arc<dyn Fn() -> Box<dyn DynDriver> + Send + Sync>;

/// A factory that builds a driver with `make` each time a poller (re)starts.
pub fn factory<D: Driver>(make: impl Fn() -> D + Send + Sync + 'static) -> DriverFactory {
    Arc::new(move || Box::new(make()) as Box<dyn DynDriver>)
}

/// What a poll reports besides its snapshot.
#[derive(Debug)]
pub struct PollContext {
    target: Arc<str>,
    /// Logins the driver made during this poll.
    pub logins: u32,
    /// Sections that failed while the poll as a whole produced a snapshot.
    pub partial_errors: Vec<PollError>,
    /// The target's last snapshot, for the builder to share unchanged blocks with.
    previous: Option<Arc<Snapshot>>,
}

impl PollContext {
    pub fn new(target: Arc<str>) -> Self {
        PollContext {
            target,
            logins: 0,
            partial_errors: Vec::new(),
            previous: None,
        }
    }

    /// A context for the poll after the one that made `previous` (see
    /// [`SnapshotBuilder::after`]).
    pub fn after(mut self, previous: Option<Arc<Snapshot>>) -> Self {
        self.previous = previous;
        self
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// A builder whose samples carry this target's `target` label.
    pub fn snapshot_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder::new(Some(&self.target)).after(self.previous.clone())
    }
}

/// Why a poll (or a part of one) failed: the `reason` label of `fleet_target_poll_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Timeout,
    Connect,
    Http,
    Auth,
    Api,
    Decode,
    /// An answer or a snapshot went past one of the target's bounds (`max_rows`, `max_series`).
    Limit,
}

impl Reason {
    /// Every reason, in label order, so error counters start at zero and `rate()` sees the
    /// first error.
    pub const ALL: [Reason; 7] = [
        Reason::Timeout,
        Reason::Connect,
        Reason::Http,
        Reason::Auth,
        Reason::Api,
        Reason::Decode,
        Reason::Limit,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::Http => "http",
            Reason::Auth => "auth",
            Reason::Api => "api",
            Reason::Decode => "decode",
            Reason::Limit => "limit",
        }
    }

    /// The position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn headline(self) -> &'static str {
        match self {
            Reason::Timeout => "poll timed out",
            Reason::Connect => "cannot connect",
            Reason::Http => "HTTP error",
            Reason::Auth => "authentication failed",
            Reason::Api => "device API error",
            Reason::Decode => "cannot decode answer",
            Reason::Limit => "over a limit",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed poll or part of one: a reason and what the device or transport said. The messages
/// are shown on the status page and in logs, so they never carry a request body, a URL with
/// credentials, or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollError {
    reason: Reason,
    detail: String,
}

impl PollError {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        PollError {
            reason,
            detail: detail.into(),
        }
    }

    /// The poll's deadline passed.
    pub fn timeout() -> Self {
        PollError::new(Reason::Timeout, "")
    }

    pub fn connect(detail: impl Into<String>) -> Self {
        PollError::new(Reason::Connect, detail)
    }

    pub fn http(detail: impl Into<String>) -> Self {
        PollError::new(Reason::Http, detail)
    }

    pub fn auth(detail: impl Into<String>) -> Self {
        PollError::new(Reason::Auth, detail)
    }

    pub fn api(detail: impl Into<String>) -> Self {
        PollError::new(Reason::Api, detail)
    }

    pub fn decode(detail: impl Into<String>) -> Self {
        PollError::new(Reason::Decode, detail)
    }

    /// An answer or a snapshot went past one of the target's bounds.
    pub fn limit(detail: impl Into<String>) -> Self {
        PollError::new(Reason::Limit, detail)
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason.headline())?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for PollError {}

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

/// The device kinds a config may name, as the binary registers them.
pub type Registry = &'static [Kind];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_reason_headline() {
        assert_eq!(PollError::timeout().to_string(), "poll timed out");
        assert_eq!(
            PollError::api("errno 1").to_string(),
            "device API error: errno 1"
        );
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
