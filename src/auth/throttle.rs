//! Failed-login throttling per account and per client IP.
//!
//! After too many failures within the window, attempts are refused until the
//! window has passed since the first of them: slows guessing to a crawl, yet
//! never locks an account for longer than one window (a lockout an attacker
//! could extend forever would be a denial of service of its own).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before stale ones are pruned; bounds memory under a flood.
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

/// How many failed logins, within how long, make further attempts wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub max_per_account: u32,
    pub max_per_ip: u32,
    pub window: Duration,
}

pub struct LoginThrottle {
    max_per_account: u32,
    max_per_ip: u32,
    window: Duration,
    windows: Mutex<HashMap<Key, Window>>,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let ThrottleSettings {
            max_per_account,
            max_per_ip,
            window,
        } = settings;
        Self {
            max_per_account,
            max_per_ip,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when this account or this IP has failed too often lately.
    /// The account key is whatever was typed, so unknown and known accounts
    /// are throttled alike and the answer reveals nothing.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().expect("throttle lock");
        let blocked = |key: &Key, max: u32| {
            windows.get(key).and_then(|w| {
                let age = now.duration_since(w.started);
                (age < self.window && w.failures >= max).then(|| self.window - age)
            })
        };
        let waits = [
            blocked(&Key::Account(account_key(account)), self.max_per_account),
            blocked(&Key::Ip(ip), self.max_per_ip),
        ];
        match waits.into_iter().flatten().max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("throttle lock");
        if windows.len() >= PRUNE_AT {
            windows.retain(|_, w| now.duration_since(w.started) < self.window);
        }
        for key in [Key::Account(account_key(account)), Key::Ip(ip)] {
            let w = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(w.started) >= self.window {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures += 1;
        }
    }

    /// A correct password clears the account's record (not the IP's: one
    /// valid account must not launder guesses against others).
    pub fn record_success(&self, account: &str) {
        self.windows
            .lock()
            .expect("throttle lock")
            .remove(&Key::Account(account_key(account)));
    }
}

fn account_key(login: &str) -> String {
    login.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn blocks_an_account_after_max_failures_until_the_window_passes() {
        let t = LoginThrottle::new(ThrottleSettings {
            max_per_account: 3,
            max_per_ip: 100,
            window: Duration::from_millis(200),
        });
        for _ in 0..3 {
            assert!(t.check("Bob", ip(1)).is_ok());
            t.record_failure("Bob", ip(1));
        }
        let wait = t.check("bob", ip(2)).unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        assert!(t.check("alice", ip(2)).is_ok(), "other accounts unaffected");
        std::thread::sleep(Duration::from_millis(220));
        assert!(
            t.check("bob", ip(1)).is_ok(),
            "never locked for longer than the window"
        );
    }

    #[test]
    fn blocks_an_ip_spraying_many_accounts() {
        let t = LoginThrottle::new(ThrottleSettings {
            max_per_account: 100,
            max_per_ip: 4,
            window: Duration::from_secs(60),
        });
        for i in 0..4 {
            t.record_failure(&format!("user{i}"), ip(9));
        }
        assert!(t.check("someone-else", ip(9)).is_err());
        assert!(t.check("someone-else", ip(8)).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let t = LoginThrottle::new(ThrottleSettings {
            max_per_account: 2,
            max_per_ip: 100,
            window: Duration::from_secs(60),
        });
        t.record_failure("carol", ip(1));
        t.record_success("carol");
        t.record_failure("carol", ip(1));
        assert!(t.check("carol", ip(1)).is_ok());
    }
}
