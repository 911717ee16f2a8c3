//! A slow answer refreshed every `every` polls and reused in between.
//!
//! Some answers change only with configuration or firmware (physical ports, node descriptions,
//! OEM data) yet cost a call each. They are fetched when there is none yet, on a fixed schedule
//! of polls, and when the driver learns the one it has may be out of date ([`Cached::expire`]:
//! an unknown node, a new login). A failed refresh keeps the last answer; the schedule, not the
//! failure, says when to ask again, so a failing call costs a request per `every` polls, not
//! one per poll.

/// The last answer of a slow call and its schedule.
#[derive(Debug)]
pub(crate) struct Cached<T> {
    value: Option<T>,
    every: u64,
    /// Polls counted by [`Cached::tick`].
    polls: u64,
    expired: bool,
}

impl<T> Cached<T> {
    /// `every` is at least 1 (a configuration check says so; 0 is read as 1).
    pub(crate) fn new(every: u64) -> Self {
        Cached {
            value: None,
            every: every.max(1),
            polls: 0,
            expired: false,
        }
    }

    /// Whether this poll is one of the scheduled refreshes (the first poll is).
    pub(crate) fn scheduled(&self) -> bool {
        self.polls.is_multiple_of(self.every)
    }

    /// Whether this poll should fetch the answer: none yet, scheduled, or expired.
    pub(crate) fn due(&self) -> bool {
        self.value.is_none() || self.expired || self.scheduled()
    }

    /// Marks the answer out of date: the next [`Cached::due`] is true.
    pub(crate) fn expire(&mut self) {
        self.expired = true;
    }

    /// Counts one poll of the schedule.
    pub(crate) fn tick(&mut self) {
        self.polls += 1;
    }

    /// Keeps a fresh answer.
    pub(crate) fn store(&mut self, value: T) -> &T {
        self.expired = false;
        self.value.insert(value)
    }

    /// The last answer, fresh or not.
    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::Cached;

    #[test]
    fn refreshed_when_missing_on_schedule_and_when_expired() {
        let mut c = Cached::new(3);
        let mut fetched = Vec::new();
        for poll in 0..7 {
            if poll == 4 {
                c.expire();
            }
            if c.due() {
                fetched.push(poll);
                // The refreshes at polls 0 and 3 fail: 0 has nothing to keep, 3 keeps poll 1's.
                if poll != 0 && poll != 3 {
                    c.store(poll);
                }
            }
            c.tick();
        }
        assert_eq!(fetched, [0, 1, 3, 4, 6]);
        assert_eq!(c.get(), Some(&6));
    }
}
