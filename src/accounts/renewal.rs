//! Operator mode: when a minted user is renewed, and until when requests may start on its
//! connection. Computed from the JWT's own `exp`, not from the configured expiry: `exp`
//! is whole Unix seconds counted from a truncated clock reading, so a user minted at
//! 12.9 s "for 4 s" expires at 16 s, 3.1 s later. The server closes the connection at
//! `exp`; whatever still runs on it then times out.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The renewal never starts later than this before `exp` (unless the user is valid for
/// less than twice as long: then at half of it). It covers a connect, the account check
/// and the advisory subscription on a loaded machine, where these took over a second.
pub(super) const RENEW_MARGIN: Duration = Duration::from_secs(2);

/// How soon a failed renewal is tried again (requests try it too, once the connection
/// stops taking them).
pub(super) const RETRY_RENEW_AFTER: Duration = Duration::from_secs(1);

/// The schedule of one minted user's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    /// When to mint the next user and connect with it: a quarter of the real validity
    /// before `exp`, or [`RENEW_MARGIN`] (at most half the validity) if that is longer.
    pub(super) renew_at: Instant,
    /// Until when new requests may start on this connection: halfway between `renew_at`
    /// and `exp`. Later ones wait for the renewal (or make it), so that a request gets at
    /// least half the margin before the server closes its connection.
    pub(super) serve_until: Instant,
    /// The JWT's `exp`, on the monotonic clock.
    pub(super) expires_at: Instant,
}

impl Lease {
    /// The lease of a user whose JWT expires at `exp` (Unix seconds), read at the
    /// wall-clock time `now` which is the monotonic instant `at`. Read the clocks after
    /// minting: a later `now` only shortens the validity seen here, never lengthens it.
    pub(super) fn new(exp: i64, now: SystemTime, at: Instant) -> Lease {
        let exp = UNIX_EPOCH + Duration::from_secs(u64::try_from(exp).unwrap_or(0));
        let validity = exp.duration_since(now).unwrap_or(Duration::ZERO);
        let before = (validity / 4).max(RENEW_MARGIN.min(validity / 2));
        let renew_in = validity - before;
        Lease {
            renew_at: at + renew_in,
            serve_until: at + renew_in + before / 2,
            expires_at: at + validity,
        }
    }

    /// The lease of a user minted just now whose JWT expires at `exp`.
    pub(super) fn starting_now(exp: i64) -> Lease {
        Lease::new(exp, SystemTime::now(), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(now_ms: u64, exp: i64) -> (Lease, Instant) {
        let at = Instant::now();
        let now = UNIX_EPOCH + Duration::from_millis(now_ms);
        (Lease::new(exp, now, at), at)
    }

    /// A 4 s user minted at 1000.9 s: `exp` counts from the truncated 1000 s, so it is
    /// valid 3.1 s. Three quarters of the configured 4 s (3 s) left 0.1 s for the renewal
    /// to connect; the lease renews 1.55 s before `exp` and stops taking requests 0.775 s
    /// before it.
    #[test]
    fn a_short_user_is_renewed_from_its_real_exp_with_a_margin() {
        let (l, at) = lease(1_000_900, 1_004);
        assert_eq!(l.expires_at, at + Duration::from_millis(3_100));
        assert_eq!(l.renew_at, at + Duration::from_millis(1_550));
        assert_eq!(l.serve_until, at + Duration::from_millis(2_325));
        // Minted on a whole second: valid 4 s, renewed 2 s before it expires.
        let (l, at) = lease(1_000_000, 1_004);
        assert_eq!(l.renew_at, at + Duration::from_secs(2));
        assert_eq!(l.expires_at, at + Duration::from_secs(4));
        // Every minting instant within the second keeps at least 1.5 s for the renewal.
        for ms in (0..1_000).step_by(50) {
            let (l, _) = lease(1_000_000 + ms, 1_004);
            assert!(
                l.expires_at - l.renew_at >= Duration::from_millis(1_500),
                "{ms}: {l:?}"
            );
            assert!(
                l.expires_at - l.serve_until >= Duration::from_millis(750),
                "{ms}: {l:?}"
            );
        }
    }

    /// A 1 h user: renewed a quarter (15 min) before it expires.
    #[test]
    fn a_long_user_is_renewed_a_quarter_before_it_expires() {
        let (l, at) = lease(1_000_000, 4_600);
        assert_eq!(l.renew_at, at + Duration::from_secs(2_700));
        assert_eq!(l.serve_until, at + Duration::from_secs(3_150));
        assert_eq!(l.expires_at, at + Duration::from_secs(3_600));
    }

    /// A user already expired (a clock behind the signer's) is renewed at once.
    #[test]
    fn an_expired_user_is_renewed_at_once() {
        let (l, at) = lease(1_000_500, 1_000);
        assert_eq!((l.renew_at, l.serve_until, l.expires_at), (at, at, at));
        let (l, at) = lease(1_000_500, -5);
        assert_eq!(l.expires_at, at);
    }
}
