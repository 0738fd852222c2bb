//! A circuit breaker per provider: after `threshold` consecutive failures the provider is skipped
//! for `cooldown`; then one trial request decides whether it closes again.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The cooldown is over and one trial request is in flight. A trial whose caller gave up
    /// (its future dropped) must not block the provider forever, so it lapses after a cooldown.
    Trial {
        lapses: Instant,
    },
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Allowed,
    /// The cooldown is over: this caller's request is the trial.
    Trial,
    Rejected,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    pub fn permit(&self) -> Permit {
        let mut state = self.state.lock();
        match *state {
            State::Closed { .. } => Permit::Allowed,
            State::Open { until: t } | State::Trial { lapses: t } if Instant::now() >= t => {
                *state = State::Trial {
                    lapses: Instant::now() + self.cooldown,
                };
                Permit::Trial
            }
            State::Open { .. } | State::Trial { .. } => Permit::Rejected,
        }
    }

    pub fn success(&self) {
        *self.state.lock() = State::Closed { failures: 0 };
    }

    pub fn failure(&self) {
        let mut state = self.state.lock();
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 >= self.threshold => open,
            State::Closed { failures } => State::Closed {
                failures: failures + 1,
            },
            State::Trial { .. } | State::Open { .. } => open,
        };
    }

    /// An attempt that says nothing about the provider's health (e.g. a 400 for one model)
    /// ends a trial without opening or closing: the next caller may try again.
    pub fn neutral(&self) {
        let mut state = self.state.lock();
        if matches!(*state, State::Trial { .. }) {
            *state = State::Open {
                until: Instant::now(),
            };
        }
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.state.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_one_trial_closes_it() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert_eq!(b.permit(), Permit::Allowed);
        b.failure();
        assert_eq!(b.permit(), Permit::Allowed);
        b.failure();
        assert_eq!(b.permit(), Permit::Rejected);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permit(), Permit::Trial);
        // Only one trial at a time.
        assert_eq!(b.permit(), Permit::Rejected);
        b.success();
        assert_eq!(b.permit(), Permit::Allowed);
        assert!(!b.is_open());
    }

    #[test]
    fn a_failed_trial_reopens() {
        let b = Breaker::new(1, Duration::from_millis(30));
        b.failure();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permit(), Permit::Trial);
        b.failure();
        assert_eq!(b.permit(), Permit::Rejected);
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(60));
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.permit(), Permit::Allowed);
    }
}
