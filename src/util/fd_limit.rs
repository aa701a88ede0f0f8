//! The process's open-files limit (RLIMIT_NOFILE). Every open segment holds a descriptor (a
//! partition at least one) and so does every connection, so 10,000 partitions do not open
//! under the usual soft limit of 1,024. At start-up the soft limit is raised to the hard limit,
//! as Kafka's packaging does (`LimitNOFILE`), and running out of descriptors is reported with
//! the limit named, not as a bare "Too many open files".

use std::io;

/// The soft and hard RLIMIT_NOFILE (`None`: unlimited).
pub fn limits() -> io::Result<(Option<u64>, Option<u64>)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let value = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Ok((value(limit.rlim_cur), value(limit.rlim_max)))
}

/// Raises the soft limit to the hard limit; returns the soft limit before and after.
pub fn raise_to_hard() -> io::Result<(Option<u64>, Option<u64>)> {
    let (soft, hard) = limits()?;
    if soft == hard {
        return Ok((soft, soft));
    }
    let to_raw = |v: Option<u64>| v.map_or(libc::RLIM_INFINITY, |v| v as libc::rlim_t);
    let limit = libc::rlimit {
        rlim_cur: to_raw(hard),
        rlim_max: to_raw(hard),
    };
    // SAFETY: setrlimit only reads the struct we pass, which outlives the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((soft, limits()?.0))
}

/// Whether `e` is running out of descriptors: the process's (EMFILE) or the system's (ENFILE).
pub fn is_exhausted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
        || e.to_string().contains("Too many open files")
}

/// What to tell the operator when descriptors ran out: the limits, and how to raise them.
pub fn hint() -> String {
    let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    match limits() {
        Ok((soft, hard)) => format!(
            "the open-files limit (RLIMIT_NOFILE, `ulimit -n`) is {} (hard limit {}; the broker \
             raised the soft limit to the hard one at start-up): each segment of each partition \
             and each connection holds a descriptor; raise the hard limit (LimitNOFILE= in a \
             systemd unit, nofile in /etc/security/limits.conf, or `ulimit -Hn` before starting)",
            show(soft),
            show(hard)
        ),
        Err(e) => format!("the open-files limit (RLIMIT_NOFILE) could not be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After the raise the soft limit is the hard one, and the hint names the limit.
    #[test]
    fn raises_the_soft_limit_to_the_hard_one() {
        let (_, after) = raise_to_hard().expect("raise");
        let (soft, hard) = limits().expect("limits");
        assert_eq!((after, soft), (hard, hard));
        assert!(hint().contains("RLIMIT_NOFILE"));
        assert!(is_exhausted(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_exhausted(&io::Error::from_raw_os_error(libc::ENOSPC)));
    }
}
