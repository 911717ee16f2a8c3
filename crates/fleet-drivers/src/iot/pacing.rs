//! Which devices a poll asks, and when each request may start.
//!
//! A good API citizen spreads its requests: each device is asked about once per
//! `device_interval`, so a poll asks only the share of the fleet due since the last one, taking
//! turns round-robin. Requests start at most `rate_limit` a second (a little below it, so network
//! jitter cannot squeeze two into the platform's view of one interval). A poll that cannot ask
//! every due device before its deadline owes the rest to the next. HTTP 429 and 5xx answers
//! pause the requests for a jittered, growing delay: the platform is overloaded or limiting us,
//! and many exporters retrying in step would make it worse.

use std::time::Duration;

use tokio::time::Instant;

/// The longest pause after HTTP 429 or 5xx answers.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The round-robin turn of the fleet's devices across polls.
#[derive(Debug, Default)]
pub(super) struct Rotation {
    /// The next device to ask.
    cursor: usize,
    last_poll: Option<Instant>,
    /// Devices due that a poll could not ask before its deadline, carried to the next.
    owed: usize,
}

impl Rotation {
    /// How many of `n` devices the poll started at `started` asks: the share due since the last
    /// poll (everything on the first) plus what the last one owed.
    pub(super) fn quota(&mut self, started: Instant, n: usize, interval: Duration) -> usize {
        let due = match self.last_poll {
            None => n,
            Some(prev) => {
                let share = started.duration_since(prev).as_secs_f64() / interval.as_secs_f64();
                (n as f64 * share).ceil() as usize
            }
        };
        self.last_poll = Some(started);
        (due + self.owed).min(n)
    }

    /// The next device's turn.
    pub(super) fn next<'d>(&mut self, devices: &'d [String]) -> &'d str {
        let n = devices.len();
        let device = &devices[self.cursor % n];
        self.cursor = (self.cursor + 1) % n;
        device
    }

    /// Devices of this poll's quota it did not ask, owed to the next.
    pub(super) fn owe(&mut self, owed: usize) {
        self.owed = owed;
    }
}

/// The earliest moment the next request may start.
#[derive(Debug)]
pub(super) struct Pacer {
    spacing: Duration,
    next_slot: Instant,
    /// Consecutive pauses, for their growth.
    pauses: u32,
}

impl Pacer {
    /// Requests at least `spacing` apart.
    pub(super) fn new(spacing: Duration) -> Self {
        Pacer {
            spacing,
            next_slot: Instant::now(),
            pauses: 0,
        }
    }

    /// Waits for the next request's slot and takes it. A slot past `cutoff` is not waited for
    /// (false), unless `first`: at least one request a poll, however short its deadline.
    pub(super) async fn take_slot(&mut self, cutoff: Instant, first: bool) -> bool {
        let slot = self.next_slot.max(Instant::now());
        if !first && slot > cutoff {
            return false;
        }
        tokio::time::sleep_until(slot).await;
        self.next_slot = slot + self.spacing;
        true
    }

    /// An answer came back: pauses grow from the start again.
    pub(super) fn answered(&mut self) {
        self.pauses = 0;
    }

    /// Holds further requests back for a growing, jittered delay.
    pub(super) fn pause(&mut self) {
        self.pauses = (self.pauses + 1).min(16);
        let grown = self.spacing.saturating_mul(1 << self.pauses);
        let jittered = grown.min(MAX_PAUSE).mul_f64(0.5 + rand::random::<f64>());
        self.next_slot = self.next_slot.max(Instant::now() + jittered);
    }
}
