//! The wall clock in Unix seconds, the unit of JWT times (`creds`) and of the
//! `--max-lattices` reservations (`admission`). A leaf module, so that neither has to
//! import the other for it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 on a clock set before it).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
