//! The process's table of file descriptors, grown once when the broker starts.
//!
//! Linux grows a process's descriptor table by doubling it (128, 256, ... slots) when a new
//! descriptor does not fit, and in a multi-threaded process every growth first waits for
//! an RCU grace period (`synchronize_rcu` in `expand_fdtable`): milliseconds during which
//! the thread that accepts a connection stands still, and with it every connection waiting
//! to be accepted. A burst of connections (every client coming back after a restart) went
//! through eight of them on its way to 10,000 sockets, and the broker spent a quarter of
//! that time waiting (docs/PERFORMANCE.md). Growing the table once, at start, to what the
//! connection limit needs costs one grace period then and none later. The table costs the
//! kernel 8 bytes a slot. `tern bench` does the same for the clients it opens.

use std::os::fd::RawFd;

use rustix::process::{getrlimit, Resource};

/// Descriptors a broker holds besides its connections: listeners, epoll instances, the
/// store's files, standard streams.
const SPARE: u64 = 64;

/// The table is not grown past this many slots (8 MiB) for a limit that large.
const MOST: u64 = 1 << 20;

/// Grows this process's descriptor table to hold `connections` sockets and a few other
/// descriptors, within the open-file limit. Returns the number of descriptors the table
/// holds now, at least.
pub fn reserve(connections: usize) -> std::io::Result<u64> {
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(MOST);
    let slots = u64::try_from(connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE)
        .min(limit)
        .min(MOST);
    let Some(highest) = slots.checked_sub(1) else {
        return Ok(0);
    };
    let highest = RawFd::try_from(highest).unwrap_or(RawFd::MAX);
    // The lowest free descriptor from `highest` up: holding it for a moment grows the
    // table to fit it, and the table never shrinks.
    let any = std::fs::File::open("/dev/null")?;
    let probe = rustix::io::fcntl_dupfd_cloexec(&any, highest)?;
    drop(probe);
    Ok(slots)
}
