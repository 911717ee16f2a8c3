//! One re-login a poll, and every login counted.
//!
//! Drivers keep a device session across polls, and a session can end between them (a reboot,
//! an idle timeout, another admin's login). The first refusal in a poll that may mean so is
//! worth one login and one retry. A second is not: a device that refuses a session it just
//! issued would refuse the next one too, and a login per call floods its log (on Komari, the
//! owner's notifications). Any login in the poll, the first of a session included, spends the
//! budget. Every login is counted in `ctx.logins` (`fleet_target_logins_total`).

use fleet_core::driver::PollContext;

/// A client's re-login budget for the current poll.
#[derive(Debug, Default)]
pub(crate) struct ReloginBudget {
    spent: bool,
}

impl ReloginBudget {
    /// A new poll: the budget is back.
    pub(crate) fn new_poll(&mut self) {
        self.spent = false;
    }

    /// Counts a login about to be made and spends the poll's budget.
    pub(crate) fn logging_in(&mut self, ctx: &mut PollContext) {
        ctx.logins += 1;
        self.spent = true;
    }

    /// Whether a refusal may still be answered with a login and one retry in this poll.
    pub(crate) fn allows_relogin(&self) -> bool {
        !self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_login_a_poll_each_counted() {
        let mut budget = ReloginBudget::default();
        let mut ctx = PollContext::new("t".into());
        assert!(budget.allows_relogin());
        budget.logging_in(&mut ctx);
        assert!(!budget.allows_relogin());
        budget.new_poll();
        assert!(budget.allows_relogin());
        budget.logging_in(&mut ctx);
        assert_eq!(ctx.logins, 2);
    }
}
