//! When jobs run: the next tick of a cron schedule in the job's time zone,
//! the tick missed while the daemon was down, and the clock the daemon
//! waits on — injectable, so tests drive the daemon's own scheduling path
//! across a DST change in seconds.
//!
//! Not tokio-cron-scheduler: measured here (see the README), it keeps the
//! UTC offset a job had when it was created (an 18:00 America/New_York job
//! ran at 19:00 after the March change), lets runs of one job overlap, does
//! not catch up missed runs, and reads the system clock, which a test
//! cannot move. croner parses the expression and finds the next local time
//! (a time that falls in a DST gap moves to the first valid one, an
//! ambiguous one takes its first occurrence); chrono-tz supplies the zone;
//! tokio's timers wait. Overlap, catch-up and the two-daemon lease are the
//! daemon's (`daemon.rs`), with the ledger's help.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::jobs::Job;

/// The next tick strictly after `after`, in UTC.
pub fn next_tick(job: &Job, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&job.timezone);
    job.schedule
        .find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The latest tick in `(last, now]`: what a `catch_up` job runs at start.
/// Gives up (None) after 100,000 ticks, rather than walk years of seconds.
pub fn missed_tick(job: &Job, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut missed = None;
    let mut at = last;
    for _ in 0..100_000 {
        match next_tick(job, at) {
            Some(t) if t <= now => {
                missed = Some(t);
                at = t;
            }
            _ => return missed,
        }
    }
    None
}

/// A tick as the ledger stores it.
pub fn tick_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn parse_tick(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the daemon reads the time from and waits on.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            // Re-check after each wait: the wall clock may have been set.
            loop {
                let left = at - Utc::now();
                match left.to_std() {
                    Ok(d) if !d.is_zero() => {
                        tokio::time::sleep(d.min(Duration::from_secs(60))).await
                    }
                    _ => return,
                }
            }
        })
    }
}

/// A clock that starts at a given time and runs `factor` times faster than
/// real time: `EDI_COURIER_CLOCK=2027-03-13T22:59:50Z*3600` lets a test see
/// two days of ticks in under a minute, through the daemon's own code.
pub struct ScaledClock {
    start: DateTime<Utc>,
    real_start: std::time::Instant,
    factor: f64,
}

impl ScaledClock {
    /// `START*FACTOR` (START in RFC 3339).
    pub fn parse(spec: &str) -> Option<ScaledClock> {
        let (start, factor) = spec.split_once('*')?;
        let factor: f64 = factor.trim().parse().ok().filter(|f: &f64| *f > 0.0)?;
        Some(ScaledClock {
            start: parse_tick(start.trim())?,
            real_start: std::time::Instant::now(),
            factor,
        })
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.real_start.elapsed().as_secs_f64() * self.factor;
        let millis = (real * 1000.0) as i64;
        self.start + chrono::Duration::milliseconds(millis)
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let left = (at - self.now()).num_milliseconds();
                if left <= 0 {
                    return;
                }
                let real = Duration::from_secs_f64(left as f64 / 1000.0 / self.factor);
                tokio::time::sleep(real.max(Duration::from_millis(1))).await;
            }
        })
    }
}
