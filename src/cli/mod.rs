//! The one-shot commands' bodies (`apply`, `plan`, `permissions`, `creds`, `config
//! check`) and their arguments: `main.rs` parses the command line and dispatches here, so
//! that the binary stays a thin shell and every body is a library function.

mod args;
mod check;
mod once;
mod roles;

pub use args::{CredsArgs, PermissionsArgs, PlatformArgs, TargetArgs};
pub use check::config_check;
pub use once::once;
pub use roles::{mint_creds, print_permissions};

use crate::config_error::ConfigError;
use crate::policy::LatticePolicy;

/// Exit code: success, nothing (more) to do.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error (connection, JetStream, bad arguments).
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `plan`: something would be created or updated.
pub const EXIT_CHANGES: u8 = 2;
/// Exit code: a resource exists but would break host or wadm (left untouched).
pub const EXIT_DRIFT: u8 = 3;

/// Refuses lattice names that are invalid or reserved (built in, or by the operator's
/// `--reserve-lattice-name`), before a template names them or anything connects.
fn check_lattice_names(policy: &LatticePolicy, lattices: &[String]) -> Result<(), ConfigError> {
    for l in lattices {
        policy.check_name(l).map_err(|e| e.message)?;
    }
    Ok(())
}
