//! One task per target: a poll every interval under a deadline, with backoff while the target
//! keeps failing. A task only ever touches its own device, so a hung device delays nothing else.
//!
//! Polls are spread by a stable hash of the target's name: each target has a *phase*
//! ([`phase`]: the hash modulo its interval, counted from the Unix epoch), and its regular polls
//! fall on the wall-clock instants equal to its phase modulo the interval. So N targets poll at
//! a steady N / interval, and a restart keeps every target's phase (and the device's view of
//! its cadence). The first poll cannot wait for its phase, or an exporter with hour-long
//! intervals would have no data for an hour: it comes within the *start window*
//! ([`start_window`]: 5 s, or longer when many targets start at once, so they begin at no more
//! than [`FIRST_POLLS_PER_SECOND`]; never past the interval), at the instant equal to the phase
//! modulo the largest fraction interval / k that fits the window. The first polls are spread
//! as evenly as the later ones, over the window; after the first, polls move onto the phase.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::TargetConfig;
use crate::driver::{PollContext, PollError};
use crate::hash::stable_hash;
use crate::store::{PollReport, Store};

/// The shortest start window: a new exporter has data within seconds.
const MIN_START_WINDOW: Duration = Duration::from_secs(5);
/// How fast first polls may begin when many targets start at once: the start window grows to
/// keep to it.
pub const FIRST_POLLS_PER_SECOND: u32 = 100;

/// A running poller; dropping the handle does not stop it, [`Poller::stop`] does.
pub struct Poller {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Poller {
    /// Starts polling `target` on `runtime`, recording into `store`; `starting` pollers
    /// (this one among them) start together, which sets the start window.
    pub fn spawn(
        target: TargetConfig,
        store: Arc<Store>,
        runtime: &Handle,
        starting: usize,
    ) -> Poller {
        let cancel = CancellationToken::new();
        store.register(&target.spec.name, target.spec.kind);
        let window = start_window(target.spec.interval, starting);
        let task = runtime.spawn(run(target, store, window, cancel.clone()));
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

/// Where in every `interval` (counted from the Unix epoch) the target named `name` polls.
pub fn phase(name: &str, interval: Duration) -> Duration {
    let period = interval.as_nanos().max(1);
    nanos(u128::from(stable_hash(name)) % period)
}

/// How long after they start `starting` pollers of this `interval` make their first polls: at
/// least [`MIN_START_WINDOW`], long enough to keep to [`FIRST_POLLS_PER_SECOND`], at most the
/// interval.
pub fn start_window(interval: Duration, starting: usize) -> Duration {
    let paced = Duration::from_secs_f64(starting as f64 / f64::from(FIRST_POLLS_PER_SECOND));
    paced.max(MIN_START_WINDOW).min(interval)
}

fn nanos(n: u128) -> Duration {
    Duration::new((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32)
}

/// From `at` (wall-clock time since the Unix epoch), the wait until the next instant equal to
/// `phase` modulo `period` (zero when `at` is one).
pub fn until_phase(at: Duration, phase: Duration, period: Duration) -> Duration {
    let period = period.as_nanos().max(1);
    let (at, phase) = (at.as_nanos() % period, phase.as_nanos() % period);
    nanos((phase + period - at) % period)
}

/// The first instant at or after `not_before` that is `phase` modulo `period` on the wall clock.
fn next_on_phase(not_before: Instant, phase: Duration, period: Duration) -> Instant {
    let now = Instant::now();
    let base = not_before.max(now);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + (base - now);
    base + until_phase(wall, phase, period)
}

/// The period the first poll keeps to: the largest interval / k that fits in `window`.
fn first_poll_period(interval: Duration, window: Duration) -> Duration {
    let k = interval
        .as_nanos()
        .div_ceil(window.as_nanos().max(1))
        .max(1);
    nanos(interval.as_nanos() / k)
}

async fn run(target: TargetConfig, store: Arc<Store>, window: Duration, cancel: CancellationToken) {
    let spec = target.spec.clone();
    let name: Arc<str> = Arc::from(spec.name.as_str());
    let mut driver = (target.factory)();
    let phase = phase(&name, spec.interval);
    let first_period = first_poll_period(spec.interval, window);
    let mut next = next_on_phase(Instant::now(), phase, first_period);
    let offset = next - Instant::now();
    let mut failures = 0u32;
    // The snapshot of the last poll, whose unchanged blocks the next one shares.
    let mut last = None;
    debug!(target_name = %name, ?offset, "poller started");
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = Instant::now();
        let mut ctx = PollContext::new(name.clone()).after(last.take());
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
        last = store.record(
            &name,
            PollReport {
                duration,
                logins: ctx.logins,
                result,
                partial_errors: ctx.partial_errors,
            },
        );
        // The first instant on the phase past three quarters of an interval short of the delay:
        // the next one on the phase for a poll that started on it (however late it woke), and
        // a quarter to a whole interval and a quarter away for the first poll, which started
        // off it. Never before now: no tight loop.
        let delay = next_delay(spec.interval, spec.backoff_max, failures);
        let not_before = started + delay.saturating_sub(spec.interval * 3 / 4);
        next = next_on_phase(not_before, phase, spec.interval);
    }
    debug!(target_name = %name, "poller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_two_thousand_names_evenly_and_never_change() {
        let interval = Duration::from_secs(30);
        let mut buckets = [0usize; 30];
        for i in 0..2000 {
            let name = format!("target-{i}");
            let p = phase(&name, interval);
            assert!(p < interval);
            assert_eq!(p, phase(&name, interval), "the phase of {name} changed");
            buckets[p.as_secs() as usize] += 1;
        }
        // 66.7 a second on average; a burst would pile many into a few.
        let (min, max) = (buckets.iter().min().unwrap(), buckets.iter().max().unwrap());
        assert!(*max <= 90 && *min >= 45, "per-second buckets {buckets:?}");
        // Pinned: a restart, a rebuild or a new Rust release keeps every target's phase.
        // (Values computed independently from the published FNV-1a and fmix64 definitions.)
        assert_eq!(stable_hash(""), 0xefd0_1f60_ba99_2926);
        assert_eq!(
            phase("hq-router", Duration::from_secs(30)),
            Duration::from_nanos(142_631_216)
        );
    }

    #[test]
    fn the_wait_lands_on_the_phase_and_first_polls_fit_the_window() {
        let s = Duration::from_secs;
        assert_eq!(until_phase(s(100), s(7), s(30)), s(27));
        assert_eq!(until_phase(s(97), s(7), s(30)), Duration::ZERO);
        assert_eq!(until_phase(s(98), s(7), s(30)), s(29));
        assert_eq!(start_window(s(30), 1), s(5));
        assert_eq!(start_window(s(30), 2000), s(20));
        assert_eq!(start_window(s(2), 2000), s(2));
        assert_eq!(start_window(s(3600), 100_000), s(1000));
        assert_eq!(first_poll_period(s(30), s(5)), s(5));
        assert_eq!(first_poll_period(s(30), s(20)), s(15));
        assert_eq!(first_poll_period(s(3), s(3)), s(3));
        assert_eq!(first_poll_period(s(3600), s(5)), s(5));
    }

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
