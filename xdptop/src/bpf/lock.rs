//! libxdp's lock: every libxdp user takes `flock(LOCK_EX)` on libxdp's
//! state directory (`$LIBXDP_BPFFS/xdp`) while it reads or changes a
//! dispatcher, and libxdp waits for it without a limit. A loader that hangs
//! while holding it would hang xdptop without a word, so xdptop first waits
//! for the lock itself, with a limit, and names the holder when it gives up.
//! (The lock is released again before libxdp takes it: holding it across
//! the call would deadlock, as libxdp opens the directory anew.)

use std::{
    fs::File,
    io,
    os::unix::fs::MetadataExt as _,
    path::Path,
    time::{Duration, Instant},
};

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};

use super::Error;

/// How long xdptop waits for another loader to release libxdp's lock: far
/// longer than any dispatcher change takes (under a second on real hosts).
pub const WAIT: Duration = Duration::from_secs(10);

const POLL: Duration = Duration::from_millis(50);

/// Returns once libxdp's lock in `dir` is free (or `dir` does not exist yet:
/// libxdp makes it, and nobody can hold it), or [`Error::LibxdpLockHeld`]
/// after `limit`.
pub fn wait_until_free(dir: &Path, limit: Duration) -> Result<(), Error> {
    let Ok(mut file) = File::open(dir) else {
        return Ok(());
    };
    let start = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            // Dropping the guard unlocks.
            Ok(_free) => return Ok(()),
            Err((f, Errno::EWOULDBLOCK)) => file = f,
            // Anything else (a filesystem without flock, say) is libxdp's
            // to meet and report.
            Err(_) => return Ok(()),
        }
        if start.elapsed() >= limit {
            return Err(Error::LibxdpLockHeld {
                dir: dir.to_owned(),
                holder: holder(dir).unwrap_or_else(|| "another process".to_owned()),
                waited: limit,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Who holds the flock on `dir`, from `/proc/locks`: "COMM (pid PID)".
fn holder(dir: &Path) -> Option<String> {
    let meta = std::fs::metadata(dir).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = flock_holder(&locks, meta.dev(), meta.ino())?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|_: io::Error| "?".to_owned());
    Some(format!("{comm} (pid {pid})"))
}

/// The pid of the FLOCK entry in `/proc/locks` text for the file with this
/// device and inode. Lines read `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE
/// START END`, the device numbers in hex; blocked waiters (`N: -> FLOCK`)
/// are skipped.
fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    locks.lines().find_map(|line| {
        let mut w = line.split_whitespace().skip(1);
        if w.next()? != "FLOCK" {
            return None;
        }
        let pid = w.nth(2)?.parse().ok()?;
        let mut id = w.next()?.split(':');
        let maj = u64::from_str_radix(id.next()?, 16).ok()?;
        let min = u64::from_str_radix(id.next()?, 16).ok()?;
        let inode: u64 = id.next()?.parse().ok()?;
        (maj == major && min == minor && inode == ino).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let locks = "\
1: POSIX  ADVISORY  WRITE 900 00:19:77 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 00:1a:1234 0 EOF
2: -> FLOCK  ADVISORY  WRITE 4343 00:1a:1234 0 EOF
3: FLOCK  ADVISORY  WRITE 5151 00:1a:99 0 EOF
";
        let dev = nix::sys::stat::makedev(0, 0x1a);
        assert_eq!(flock_holder(locks, dev, 1234), Some(4242));
        assert_eq!(flock_holder(locks, dev, 99), Some(5151));
        assert_eq!(flock_holder(locks, dev, 77), None, "a POSIX lock");
        assert_eq!(
            flock_holder(locks, nix::sys::stat::makedev(0, 0x19), 1234),
            None
        );
    }

    #[test]
    fn a_held_lock_is_waited_for_then_named() {
        let dir = std::env::temp_dir().join(format!("xdptop-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let held = Flock::lock(
            File::open(&dir).expect("open"),
            FlockArg::LockExclusiveNonblock,
        )
        .map_err(|(_, e)| e)
        .expect("lock");
        let start = Instant::now();
        let err = wait_until_free(&dir, Duration::from_millis(300)).expect_err("held");
        assert!(start.elapsed() >= Duration::from_millis(300));
        let text = err.to_string();
        assert!(
            text.contains(&format!("(pid {})", std::process::id())),
            "{text}"
        );
        drop(held);
        wait_until_free(&dir, Duration::from_millis(300)).expect("free again");
        wait_until_free(&dir.join("missing"), Duration::ZERO).expect("no directory");
        std::fs::remove_dir(&dir).expect("remove the temp dir");
    }
}
