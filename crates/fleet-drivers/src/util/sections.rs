//! The tally of one poll's sections, the one rule every driver applies to partial failure.
//!
//! A device answers in sections (one call, one slot, one device of a fleet). Most failures cost
//! only their own section's series: the rest of the snapshot is still true. Some failures say
//! the device as a whole cannot be asked now (its [`Policy::fatal`] reasons); asking on would
//! only repeat them, so the poll stops asking. A poll in which nothing succeeded fails with the
//! first error, unless the snapshot still holds series from earlier answers worth serving.

use fleet_core::driver::{PollContext, PollError, Reason};

/// What a fatal failure does to the rest of the poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFatal {
    /// The poll ends at once with the error: one device behind one session, whose later calls
    /// would all fail the same way.
    EndPoll,
    /// No more requests are sent, but answers already in flight are kept: a fleet of devices
    /// behind one API. The poll fails with the error only when nothing succeeded.
    StopAsking,
}

/// Which failures are fatal and what they do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) fatal: &'static [Reason],
    pub(crate) on_fatal: OnFatal,
}

impl Policy {
    /// One device polled call by call: a timeout, an unreachable device, a refused login or an
    /// HTTP-level failure ends the poll.
    pub(crate) const DEVICE: Policy = Policy {
        fatal: &[Reason::Timeout, Reason::Connect, Reason::Auth, Reason::Http],
        on_fatal: OnFatal::EndPoll,
    };
}

/// One poll's running tally of sections.
#[derive(Debug)]
pub(crate) struct Sections {
    policy: Policy,
    succeeded: usize,
    /// The first fatal failure under [`OnFatal::StopAsking`].
    fatal: Option<PollError>,
    failed: Vec<PollError>,
}

impl Sections {
    pub(crate) fn new(policy: Policy) -> Self {
        Sections {
            policy,
            succeeded: 0,
            fatal: None,
            failed: Vec::new(),
        }
    }

    /// Records one section's outcome and hands its answer on (`None` when it failed). `Err`
    /// means the poll ends now with that error (a fatal failure under [`OnFatal::EndPoll`]);
    /// under [`OnFatal::StopAsking`] the first fatal failure is kept instead (see
    /// [`Sections::stopped`]) and later ones are dropped.
    pub(crate) fn record<T>(
        &mut self,
        result: Result<T, PollError>,
    ) -> Result<Option<T>, PollError> {
        match result {
            Ok(answer) => {
                self.succeeded += 1;
                Ok(Some(answer))
            }
            Err(e) if self.policy.fatal.contains(&e.reason()) => match self.policy.on_fatal {
                OnFatal::EndPoll => Err(e),
                OnFatal::StopAsking => {
                    self.fatal.get_or_insert(e);
                    Ok(None)
                }
            },
            Err(e) => {
                self.failed.push(e);
                Ok(None)
            }
        }
    }

    /// Records a section the poll cannot do without: its failure, whatever the reason, ends
    /// the poll.
    pub(crate) fn required<T>(&mut self, result: Result<T, PollError>) -> Result<T, PollError> {
        let answer = result?;
        self.succeeded += 1;
        Ok(answer)
    }

    /// Whether a fatal failure said to send no more requests.
    pub(crate) fn stopped(&self) -> bool {
        self.fatal.is_some()
    }

    /// Ends the tally: the failed sections become `ctx`'s partial errors (a kept fatal failure
    /// first), unless nothing succeeded. Then the poll fails with the fatal failure, or with the
    /// first failure when `earlier_series` is false (the snapshot has nothing from before).
    pub(crate) fn finish(
        mut self,
        ctx: &mut PollContext,
        earlier_series: bool,
    ) -> Result<(), PollError> {
        if let Some(e) = self.fatal.take() {
            if self.succeeded == 0 {
                return Err(e);
            }
            self.failed.insert(0, e);
        }
        if self.succeeded == 0 && !earlier_series && !self.failed.is_empty() {
            return Err(self.failed.remove(0));
        }
        ctx.partial_errors.extend(self.failed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: Policy = Policy {
        fatal: &[Reason::Auth],
        on_fatal: OnFatal::StopAsking,
    };

    fn ctx() -> PollContext {
        PollContext::new("t".into())
    }

    #[test]
    fn a_device_wide_failure_ends_the_poll_others_cost_a_section() {
        let mut s = Sections::new(Policy::DEVICE);
        assert_eq!(s.record(Ok(1)), Ok(Some(1)));
        assert_eq!(s.record::<()>(Err(PollError::api("a"))), Ok(None));
        assert_eq!(
            s.record::<()>(Err(PollError::timeout())),
            Err(PollError::timeout())
        );
        let mut c = ctx();
        assert_eq!(s.finish(&mut c, false), Ok(()));
        assert_eq!(c.partial_errors, [PollError::api("a")]);
    }

    #[test]
    fn nothing_succeeded_fails_with_the_first_error_unless_series_are_kept() {
        let mut s = Sections::new(Policy::DEVICE);
        s.record::<()>(Err(PollError::api("a"))).unwrap();
        s.record::<()>(Err(PollError::decode("b"))).unwrap();
        assert_eq!(s.finish(&mut ctx(), false), Err(PollError::api("a")));

        let mut s = Sections::new(Policy::DEVICE);
        s.record::<()>(Err(PollError::api("a"))).unwrap();
        let mut c = ctx();
        assert_eq!(s.finish(&mut c, true), Ok(()));
        assert_eq!(c.partial_errors.len(), 1);
    }

    #[test]
    fn a_required_section_counts_as_success() {
        let mut s = Sections::new(Policy::DEVICE);
        assert_eq!(s.required(Ok(3)), Ok(3));
        s.record::<()>(Err(PollError::api("a"))).unwrap();
        assert_eq!(s.finish(&mut ctx(), false), Ok(()));
        assert_eq!(
            Sections::new(Policy::DEVICE).required::<()>(Err(PollError::api("x"))),
            Err(PollError::api("x"))
        );
    }

    #[test]
    fn stop_asking_keeps_the_first_fatal_failure() {
        let mut s = Sections::new(FLEET);
        s.record::<()>(Err(PollError::auth("first"))).unwrap();
        s.record::<()>(Err(PollError::auth("second"))).unwrap();
        assert!(s.stopped());
        assert_eq!(s.finish(&mut ctx(), true), Err(PollError::auth("first")));

        let mut s = Sections::new(FLEET);
        s.record(Ok(())).unwrap();
        s.record::<()>(Err(PollError::api("a"))).unwrap();
        s.record::<()>(Err(PollError::auth("f"))).unwrap();
        let mut c = ctx();
        assert_eq!(s.finish(&mut c, false), Ok(()));
        assert_eq!(
            c.partial_errors,
            [PollError::auth("f"), PollError::api("a")]
        );
    }
}
