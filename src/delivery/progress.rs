//! When a pass last moved on: a claim, an SMTP reply (or a command's
//! timeout), an email settled, a batch of records planned. The service feeds
//! systemd's watchdog from this, so a pass that waits on a bounded step keeps
//! the keepalive going, and one that is stuck stops it and is restarted.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Milliseconds from `start()` to the last progress.
static LAST: AtomicU64 = AtomicU64::new(0);

/// Notes that the pass has just moved on.
pub fn made() {
    let ms = start().elapsed().as_millis() as u64;
    LAST.fetch_max(ms, Ordering::Relaxed);
}

/// How long since the pass last moved on.
pub fn since_last() -> Duration {
    let now = start().elapsed().as_millis() as u64;
    Duration::from_millis(now.saturating_sub(LAST.load(Ordering::Relaxed)))
}

/// Whether a pass that last moved on `quiet` ago may still be waiting on a
/// bounded step (no step waits longer than `longest_step`), rather than stuck.
pub fn is_alive(quiet: Duration, longest_step: Duration) -> bool {
    quiet <= longest_step + Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_alive_while_a_bounded_step_may_still_be_waiting() {
        let step = Duration::from_secs(600);
        assert!(is_alive(Duration::from_secs(5), step));
        assert!(is_alive(Duration::from_secs(650), step));
        assert!(!is_alive(Duration::from_secs(661), step));
    }

    #[test]
    fn progress_resets_the_quiet_time() {
        made();
        assert!(since_last() < Duration::from_secs(1));
    }
}
