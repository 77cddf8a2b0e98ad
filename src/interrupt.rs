//! A stop asked for by the user (Ctrl-C, SIGTERM). The binary's signal handler sets
//! it; the encoder checks it between batches, so one long article stops within a
//! batch's time instead of running to its end.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks running work to stop at its next check; returns whether a stop had already
/// been asked for (a second request: the caller may then exit at once).
pub fn request() -> bool {
    REQUESTED.swap(true, Ordering::SeqCst)
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Fails with [`crate::Error::Interrupted`] once a stop has been asked for.
pub fn check() -> crate::Result<()> {
    if requested() { Err(crate::Error::Interrupted) } else { Ok(()) }
}
