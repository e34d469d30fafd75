//! The pacing scheduler: every IB historical request waits here until sending it cannot
//! break one of IB's pacing rules, so IB never answers with a pacing violation (162).
//!
//! The rules ([`PacingLimits`], IB's values by default, all configurable so tests and
//! the simulator can scale time down):
//!
//! 1. at most 60 historical requests in any rolling 10 minutes;
//! 2. no identical request (same contract, bar size, what-to-show, end time and
//!    duration: one [`RequestKey`]) within 15 s;
//! 3. at most 5 requests for the same contract, exchange and what-to-show in any 2 s
//!    (a sixth is a violation);
//! 4. at most 50 historical requests open at once;
//! 5. a `BID_ASK` request counts twice against rules 1 and 3 (once against rule 4);
//! 6. (not IB's: off unless [`PacingLimits::min_interval`] is set) at least
//!    `min_interval` between any two grants, so that the send rate stays within
//!    `ibapi`'s message rate limiter and a grant is sent when it is recorded.
//!
//! A send is recorded at the instant [`PacingScheduler::acquire`] grants it; the
//! [`PacingPermit`] it returns stands for the open request and frees its slot (rule 4)
//! when dropped. A recorded send at `s` counts against a window of length `w` while
//! `now < s + w + margin` ([`PacingLimits::margin`] absorbs network jitter between our
//! clock and IB's). A budget smaller than a request's weight is treated as that weight
//! (and a limit of 0 as 1), so no request can wait forever.
//!
//! **Fairness.** Waiters are served in arrival order, with one relaxation so that a
//! request held back by a rule that concerns only itself does not hold up everyone:
//!
//! * the shared budgets (rules 1 and 6 and open slots) are strictly FIFO: when the oldest
//!   waiter does not fit, nobody behind it is sent, even a lighter request that would
//!   fit (so a `BID_ASK` waiting for two units is not starved by single ones);
//! * within one (contract, exchange, what-to-show) group the burst budget (rule 3) is
//!   FIFO: a waiter held by it holds back the later waiters of its group only;
//! * a waiter held only by its own identical-request interval (rule 2) or by its group's
//!   burst budget lets later waiters of other groups pass.
//!
//! A waiter is therefore never starved: once its own interval and its group's burst have
//! passed, it is first in line for everything it needs.
//!
//! Time is `tokio::time`, so tests run on the paused clock.

mod limits;
mod scheduler;
mod state;

#[cfg(test)]
mod tests;

pub use limits::{ContractKey, PacingLimits, PacingStats, RequestKey};
pub use scheduler::{PacingPermit, PacingScheduler};
