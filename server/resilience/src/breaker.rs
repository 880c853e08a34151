//! A circuit breaker per remote backend.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Time source; tests use a manual clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (default 5).
    pub failure_threshold: u32,
    /// How long an open breaker rejects calls before letting one trial through (default 60 s).
    pub recovery: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            recovery: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// What `status` commands show.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSnapshot {
    pub name: String,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub times_opened: u64,
    /// Time until an open breaker lets a trial call through.
    pub retry_in: Option<Duration>,
}

/// A call was not attempted because the breaker is open.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} is unavailable (circuit breaker open after {failures} consecutive failures); next attempt in {retry_in:?}")]
pub struct Rejected {
    pub name: String,
    pub failures: u32,
    pub retry_in: Duration,
}

struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
    times_opened: u64,
    trial_in_flight: bool,
}

pub struct CircuitBreaker<C: Clock = SystemClock> {
    name: String,
    cfg: BreakerConfig,
    clock: C,
    inner: Mutex<Inner>,
}

impl CircuitBreaker<SystemClock> {
    pub fn new(name: impl Into<String>, cfg: BreakerConfig) -> Self {
        Self::with_clock(name, cfg, SystemClock)
    }
}

impl<C: Clock> CircuitBreaker<C> {
    pub fn with_clock(name: impl Into<String>, cfg: BreakerConfig, clock: C) -> Self {
        CircuitBreaker {
            name: name.into(),
            cfg,
            clock,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
                times_opened: 0,
                trial_in_flight: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks to make a call. `Err` means fail fast without touching the backend.
    pub fn acquire(&self) -> Result<(), Rejected> {
        let now = self.clock.now();
        let mut s = self.lock();
        match s.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => {
                let opened = s.opened_at.unwrap_or(now);
                let elapsed = now.saturating_duration_since(opened);
                if elapsed >= self.cfg.recovery {
                    s.state = BreakerState::HalfOpen;
                    s.trial_in_flight = true;
                    tracing::info!(backend = %self.name, "circuit breaker half-open: trying one call");
                    Ok(())
                } else {
                    Err(self.rejected(&s, self.cfg.recovery - elapsed))
                }
            }
            BreakerState::HalfOpen => {
                if s.trial_in_flight {
                    Err(self.rejected(&s, Duration::ZERO))
                } else {
                    s.trial_in_flight = true;
                    Ok(())
                }
            }
        }
    }

    fn rejected(&self, s: &Inner, retry_in: Duration) -> Rejected {
        Rejected {
            name: self.name.clone(),
            failures: s.failures,
            retry_in,
        }
    }

    pub fn on_success(&self) {
        let mut s = self.lock();
        if s.state != BreakerState::Closed {
            tracing::info!(backend = %self.name, "circuit breaker closed: backend is healthy again");
        }
        s.state = BreakerState::Closed;
        s.failures = 0;
        s.opened_at = None;
        s.trial_in_flight = false;
    }

    pub fn on_failure(&self) {
        let now = self.clock.now();
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        s.trial_in_flight = false;
        let open = match s.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => s.failures >= self.cfg.failure_threshold,
            BreakerState::Open => false,
        };
        if open {
            s.state = BreakerState::Open;
            s.opened_at = Some(now);
            s.times_opened += 1;
            tracing::warn!(backend = %self.name, failures = s.failures, "circuit breaker open: failing fast for {:?}", self.cfg.recovery);
        }
    }

    /// Runs `f` under the breaker: rejected calls never run; results update the state.
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<Result<T, E>, Rejected> {
        self.acquire()?;
        let r = f();
        match &r {
            Ok(_) => self.on_success(),
            Err(_) => self.on_failure(),
        }
        Ok(r)
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = self.clock.now();
        let s = self.lock();
        let retry_in = match (s.state, s.opened_at) {
            (BreakerState::Open, Some(t)) => Some(
                self.cfg
                    .recovery
                    .saturating_sub(now.saturating_duration_since(t)),
            ),
            _ => None,
        };
        BreakerSnapshot {
            name: self.name.clone(),
            state: s.state,
            consecutive_failures: s.failures,
            times_opened: s.times_opened,
            retry_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone)]
    struct ManualClock(Arc<Mutex<Instant>>);
    impl ManualClock {
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }
    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn breaker() -> (CircuitBreaker<ManualClock>, ManualClock) {
        let clock = ManualClock(Arc::new(Mutex::new(Instant::now())));
        (
            CircuitBreaker::with_clock("redis", BreakerConfig::default(), clock.clone()),
            clock,
        )
    }

    #[test]
    fn opens_after_five_consecutive_failures() {
        let (b, _) = breaker();
        for _ in 0..4 {
            assert!(b.call(|| Err::<(), _>("down")).is_ok());
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        let _ = b.call(|| Err::<(), _>("down"));
        assert_eq!(b.snapshot().state, BreakerState::Open);
        let mut ran = false;
        let r = b.call(|| {
            ran = true;
            Ok::<(), ()>(())
        });
        assert!(
            r.is_err() && !ran,
            "an open breaker must not call the backend"
        );
    }

    #[test]
    fn success_resets_the_count() {
        let (b, _) = breaker();
        for _ in 0..4 {
            let _ = b.call(|| Err::<(), _>(()));
        }
        let _ = b.call(|| Ok::<(), ()>(()));
        for _ in 0..4 {
            let _ = b.call(|| Err::<(), _>(()));
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed);
    }

    #[test]
    fn half_opens_after_recovery_and_closes_on_success() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            let _ = b.call(|| Err::<(), _>(()));
        }
        clock.advance(Duration::from_secs(59));
        assert!(b.acquire().is_err());
        clock.advance(Duration::from_secs(1));
        assert!(b.acquire().is_ok(), "trial call allowed after 60 s");
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(b.acquire().is_err(), "only one trial at a time");
        b.on_success();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        assert_eq!(b.snapshot().times_opened, 1);
    }

    #[test]
    fn failed_trial_reopens() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            let _ = b.call(|| Err::<(), _>(()));
        }
        clock.advance(Duration::from_secs(60));
        let _ = b.call(|| Err::<(), _>(()));
        let snap = b.snapshot();
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.retry_in, Some(Duration::from_secs(60)));
        assert_eq!(snap.times_opened, 2);
    }
}
