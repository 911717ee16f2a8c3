//! One task per target: a random start offset, then a poll every interval under a deadline,
//! with backoff while the target keeps failing. A task only ever touches its own device, so a
//! hung device delays nothing else.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::TargetConfig;
use crate::driver::{PollContext, PollError};
use crate::store::{PollReport, Store};

/// The most a first poll is delayed, so many targets do not poll in lockstep yet a new exporter
/// still has data within seconds.
const MAX_START_OFFSET: Duration = Duration::from_secs(5);

/// A running poller; dropping the handle does not stop it, [`Poller::stop`] does.
pub struct Poller {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Poller {
    /// Starts polling `target` on `runtime`, recording into `store`.
    pub fn spawn(target: TargetConfig, store: Arc<Store>, runtime: &Handle) -> Poller {
        let cancel = CancellationToken::new();
        store.register(&target.spec.name, target.spec.kind);
        let task = runtime.spawn(run(target, store, cancel.clone()));
        Poller { cancel, task }
    }

    /// Stops the poller, abandoning any poll in flight, and waits for the task to end.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// How long to wait before the next poll after `failures` consecutive failures: the interval,
/// doubled per failure up to `backoff_max`, and never less than the interval.
pub fn next_delay(interval: Duration, backoff_max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    interval
        .saturating_mul(factor)
        .min(backoff_max)
        .max(interval)
}

async fn run(target: TargetConfig, store: Arc<Store>, cancel: CancellationToken) {
    let spec = target.spec.clone();
    let name: Arc<str> = Arc::from(spec.name.as_str());
    let mut driver = (target.factory)();
    let offset = rand::rng().random_range(Duration::ZERO..=spec.interval.min(MAX_START_OFFSET));
    let mut next = Instant::now() + offset;
    let mut failures = 0u32;
    debug!(target_name = %name, ?offset, "poller started");
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = Instant::now();
        let mut ctx = PollContext::new(name.clone());
        let result = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(spec.timeout, driver.poll_boxed(&mut ctx)) => {
                r.unwrap_or_else(|_| Err(PollError::timeout()))
            }
        };
        let duration = started.elapsed();
        for e in &ctx.partial_errors {
            warn!(target_name = %name, kind = spec.kind, reason = e.reason().as_str(), error = %e, "part of poll failed");
        }
        match &result {
            Ok(s) => {
                if failures > 0 {
                    info!(target_name = %name, kind = spec.kind, "target recovered");
                }
                failures = 0;
                debug!(target_name = %name, series = s.series(), ?duration, "poll ok");
            }
            Err(e) => {
                failures += 1;
                warn!(target_name = %name, kind = spec.kind, reason = e.reason().as_str(), error = %e, failures, "poll failed");
            }
        }
        store.record(
            &name,
            PollReport {
                duration,
                logins: ctx.logins,
                result,
                partial_errors: ctx.partial_errors,
            },
        );
        // Fixed cadence from the poll's start; the deadline is below the interval, so this is
        // always in the future and never a tight loop.
        next = started + next_delay(spec.interval, spec.backoff_max, failures);
    }
    debug!(target_name = %name, "poller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_never_below_the_interval() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(s(30), s(300), 0), s(30));
        assert_eq!(next_delay(s(30), s(300), 1), s(30));
        assert_eq!(next_delay(s(30), s(300), 2), s(60));
        assert_eq!(next_delay(s(30), s(300), 4), s(240));
        assert_eq!(next_delay(s(30), s(300), 5), s(300));
        assert_eq!(next_delay(s(30), s(300), 1000), s(300));
        assert_eq!(next_delay(s(30), s(10), 3), s(30));
    }
}
