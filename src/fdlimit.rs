//! The open-files limit.
//!
//! Every target holds a device connection and every scraper one more, and service managers often
//! start a process with a soft limit of 1024: past it, `accept` and `connect` fail and the
//! exporter goes dark without a word. Like Go programs (and so every Prometheus exporter), the
//! exporter raises its soft limit to the hard one at start, and says what it got.

/// The soft limit before and after raising it to the hard one, or why it could not be read or
/// raised.
#[cfg(unix)]
pub(crate) fn raise_to_hard_limit() -> Result<(libc::rlim_t, libc::rlim_t), std::io::Error> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which `limit` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads one rlimit struct, which `limit` is.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, limit.rlim_cur))
}

#[cfg(not(unix))]
pub(crate) fn raise_to_hard_limit() -> Result<(u64, u64), std::io::Error> {
    Err(std::io::Error::other("no open-files limit on this system"))
}
