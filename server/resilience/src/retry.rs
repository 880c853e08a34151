//! Retry with capped exponential backoff and deterministic jitter.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(2),
            attempts: 3,
        }
    }
}

impl Backoff {
    /// Delay before retry number `n` (1-based): initial · 2^(n-1), capped, with ±25 % jitter
    /// derived from `n` so concurrent callers spread out without a random number generator.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max);
        let jitter = ((n.wrapping_mul(2_654_435_761) >> 16) % 51) as i64 - 25; // -25..=25 %
        let ms = base.as_millis() as i64;
        Duration::from_millis((ms + ms * jitter / 100).max(0) as u64)
    }
}

/// Calls `f` up to `b.attempts` times while `retryable(&err)` says so, sleeping in between.
pub fn retry<T, E>(
    b: &Backoff,
    mut retryable: impl FnMut(&E) -> bool,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut n = 0;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) => {
                n += 1;
                if n >= b.attempts.max(1) || !retryable(&e) {
                    return Err(e);
                }
                std::thread::sleep(b.delay(n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            attempts: 5,
        };
        let d: Vec<u128> = (1..=5).map(|n| b.delay(n).as_millis()).collect();
        assert!(d[0] >= 75 && d[0] <= 125, "{d:?}");
        assert!(d[2] >= 300 && d[2] <= 500, "{d:?}");
        assert!(d.iter().all(|x| *x <= 500), "{d:?}");
    }

    #[test]
    fn retries_only_retryable_errors() {
        let b = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
            attempts: 3,
        };
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &b,
            |_| true,
            || {
                calls += 1;
                Err("x")
            },
        );
        assert!(r.is_err());
        assert_eq!(calls, 3);
        calls = 0;
        let _: Result<(), &str> = retry(
            &b,
            |_| false,
            || {
                calls += 1;
                Err("fatal")
            },
        );
        assert_eq!(calls, 1);
        let mut n = 0;
        let ok: Result<u32, &str> = retry(
            &b,
            |_| true,
            || {
                n += 1;
                if n < 2 {
                    Err("flaky")
                } else {
                    Ok(n)
                }
            },
        );
        assert_eq!(ok, Ok(2));
    }
}
