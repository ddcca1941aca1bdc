//! What can fail on the kernel side, as values callers can match on (e.g.
//! [`Error::is_out_of_descriptors`]) instead of searching the text. Each
//! message is what the operator reads; the cause stays attached as the
//! error's source, so anyhow's `{:#}` still prints it (on the bare enum,
//! `{:#}` is only the message: use [`chain`] to log one with its causes).

use std::{io, path::PathBuf};

use aya::{EbpfError, maps::MapError, pin::PinError, programs::ProgramError};

use super::AttachMode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown interface {iface} in this network namespace (see `ip link`)")]
    UnknownInterface { iface: String },

    #[error(
        "pin directory {} does not exist; mount a bpffs there: \
         `mkdir -p {0} && mount -t bpf bpf {0}`",
        .dir.display()
    )]
    PinDirMissing { dir: PathBuf },

    #[error(
        "{} is not a bpffs, so pins there would not work; mount one: \
         `mount -t bpf bpf {0}` (systemd hosts normally mount /sys/fs/bpf at boot)",
        .dir.display()
    )]
    NotBpffs { dir: PathBuf },

    /// The pinned shared map is not the seed's layout; it is left alone.
    #[error(
        "refusing to use the pinned map {}: its {why}. The seed's scrapers expect a hash \
         map of __u32 -> struct datarec {{ __u64 rx_packets; __u64 rx_bytes; }} with \
         max_entries {max_entries}. It was left untouched; remove it yourself if it is stale, \
         or point xdptop elsewhere with --pin-dir",
        .path.display()
    )]
    SharedMapLayout {
        path: PathBuf,
        /// Every difference, in words.
        why: String,
        max_entries: u32,
    },

    /// The other loader's program that xdptop watched read-only was
    /// removed, and nothing replaced it.
    #[error(
        "no XDP program runs on {iface} any more (the other loader's program was removed); \
         start xdptop again to attach its own there"
    )]
    ForeignProgramGone { iface: String },

    #[error(
        "the kernel attached {iface} through netlink, not a bpf_link \
         (xdptop needs Linux 5.9+ so the attachment can outlive it)"
    )]
    NotABpfLink { iface: String },

    /// The verifier (or the kernel) refused the program.
    #[error("{}", refused(*.cap_bpf_only))]
    Refused {
        cap_bpf_only: bool,
        #[source]
        source: Box<ProgramError>,
    },

    /// Every attach mode tried failed; `failures` in the order tried.
    #[error(
        "could not attach to {iface} in {} mode: {}{}",
        mode_words(*.mode),
        chains(.failures),
        native_hint(*.mode)
    )]
    Attach {
        iface: String,
        mode: AttachMode,
        failures: Vec<ProgramError>,
    },

    #[error(
        "xdptop's link on {iface} is pinned but its counters at {} are not readable; \
         run `xdptop --detach {iface}` and start again",
        .path.display()
    )]
    UnreadableCounters {
        iface: String,
        path: PathBuf,
        #[source]
        source: Box<MapError>,
    },

    /// libxdp's dispatcher holds at most 10 programs.
    #[error(
        "the libxdp dispatcher on {iface} already runs the most programs it can hold (10), so \
         xdptop cannot join it: unload one (`xdp-loader status {iface}` lists them, \
         `xdp-loader unload {iface} -i ID` removes one) and start xdptop again"
    )]
    DispatcherFull {
        iface: String,
        #[source]
        source: io::Error,
    },

    /// The interface's dispatcher was made by a newer libxdp than the
    /// host's, which refuses to change it (protocol.org: by design).
    #[error(
        "{iface} runs a libxdp dispatcher of a newer version than this host's libxdp ({soname}) \
         can change, so xdptop cannot join it: upgrade xdp-tools / libxdp \
         (`apt-get install libxdp1` / `dnf install libxdp`) to the version that loaded it"
    )]
    DispatcherTooNew {
        iface: String,
        soname: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "libxdp's lock on {} has been held by {holder} for {}s: another XDP loader is \
         stuck changing a dispatcher. Find out what it does, or end it, then run xdptop again",
        .dir.display(),
        .waited.as_secs()
    )]
    LibxdpLockHeld {
        dir: PathBuf,
        holder: String,
        waited: std::time::Duration,
    },

    #[error("interface {iface} is gone")]
    InterfaceGone { iface: String },

    #[error("xdptop's program was detached from {iface}")]
    LinkDetached { iface: String },

    #[error("the shared map {} is gone (its loader was unloaded?)", .path.display())]
    SharedMapGone { path: PathBuf },

    /// The embedded object lacks something it was built with.
    #[error("{0}")]
    Object(&'static str),

    #[error(transparent)]
    Privilege(#[from] crate::privilege::Error),

    // The rest: what xdptop was doing, and the typed cause.
    #[error("{doing}")]
    Io {
        doing: String,
        #[source]
        source: io::Error,
    },
    #[error("{doing}")]
    Errno {
        doing: String,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("{doing}")]
    Map {
        doing: String,
        #[source]
        source: Box<MapError>,
    },
    #[error("{doing}")]
    Program {
        doing: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("{doing}")]
    Load {
        doing: String,
        #[source]
        source: Box<EbpfError>,
    },
    #[error("{doing}")]
    Pin {
        doing: String,
        #[source]
        source: Box<PinError>,
    },
}

impl Error {
    /// The process ran out of file descriptors (EMFILE) somewhere below:
    /// each watched interface holds a few, so the caller can name the limit.
    pub fn is_out_of_descriptors(&self) -> bool {
        match self {
            Error::Attach { failures, .. } => failures.iter().any(|e| emfile_below(e)),
            Error::Errno { source, .. } => *source == nix::errno::Errno::EMFILE,
            other => emfile_below(other),
        }
    }
}

/// Whether `e` or one of its sources is an `io::Error` with EMFILE (aya's
/// errors carry the syscall's `io::Error` as their source).
fn emfile_below(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EMFILE))
    })
}

fn refused(cap_bpf_only: bool) -> &'static str {
    if cap_bpf_only {
        "the kernel refused xdptop's XDP program. Without CAP_PERFMON it loads only on \
         Linux 6.17+ (older verifiers refuse the variant it needs); run xdptop as root or \
         grant CAP_PERFMON too"
    } else {
        "the kernel refused xdptop's XDP program"
    }
}

fn mode_words(mode: AttachMode) -> &'static str {
    match mode {
        AttachMode::Auto => "native or skb",
        AttachMode::Native => "native",
        AttachMode::Skb => "skb",
    }
}

fn native_hint(mode: AttachMode) -> &'static str {
    match mode {
        AttachMode::Native => " (the driver may lack native XDP: try --mode skb or --mode auto)",
        _ => "",
    }
}

/// Each failure with its causes (`a: b: c`, as anyhow's `{:#}` prints
/// them: aya's own Display leaves out the cause, e.g. "Too many open
/// files"), joined by "; ".
fn chains(failures: &[ProgramError]) -> String {
    let words: Vec<String> = failures.iter().map(|e| chain(e)).collect();
    words.join("; ")
}

/// `e` and its sources, `a: b: c`.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let parts: Vec<String> = std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect();
    parts.join(": ")
}

/// Adds "what xdptop was doing" to a typed failure.
pub(super) trait Doing<T> {
    fn doing(self, f: impl FnOnce() -> String) -> Result<T, Error>;
}

// aya's errors are large, so they are boxed (clippy's result_large_err).
macro_rules! doing {
    ($source:ty, $variant:ident, $wrap:path) => {
        impl<T> Doing<T> for Result<T, $source> {
            fn doing(self, f: impl FnOnce() -> String) -> Result<T, Error> {
                self.map_err(|source| Error::$variant {
                    doing: f(),
                    source: $wrap(source),
                })
            }
        }
    };
}
doing!(io::Error, Io, std::convert::identity);
doing!(nix::errno::Errno, Errno, std::convert::identity);
doing!(MapError, Map, Box::new);
doing!(ProgramError, Program, Box::new);
doing!(EbpfError, Load, Box::new);
doing!(PinError, Pin, Box::new);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatcher_errors_say_what_to_do() {
        let full = Error::DispatcherFull {
            iface: "eth0".into(),
            source: io::Error::from_raw_os_error(libc::E2BIG),
        };
        assert!(
            full.to_string().contains("xdp-loader unload eth0 -i ID"),
            "{full}"
        );
        let new = Error::DispatcherTooNew {
            iface: "eth0".into(),
            soname: "libxdp.so.1".into(),
            source: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        };
        assert!(new.to_string().contains("upgrade xdp-tools"), "{new}");
    }

    #[test]
    fn emfile_is_found_through_aya_errors_and_attach_failures() {
        let emfile = || io::Error::from_raw_os_error(libc::EMFILE);
        let direct = Err::<(), _>(emfile()).doing(|| "opening x".into());
        assert!(direct.expect_err("err").is_out_of_descriptors());
        let nested = Err::<(), _>(MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_obj_get",
            io_error: emfile(),
        }))
        .doing(|| "opening x".into())
        .expect_err("err");
        assert!(nested.is_out_of_descriptors());
        let attach = Error::Attach {
            iface: "eth0".into(),
            mode: AttachMode::Auto,
            failures: vec![ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_link_create",
                io_error: emfile(),
            })],
        };
        assert!(attach.is_out_of_descriptors());
        let msg = attach.to_string();
        assert!(
            msg.starts_with("could not attach to eth0 in native or skb mode: ")
                && msg.contains("Too many open files"),
            "{msg}"
        );
        let other = Err::<(), _>(io::Error::from_raw_os_error(libc::EPERM)).doing(|| "x".into());
        assert!(!other.expect_err("err").is_out_of_descriptors());
        assert!(
            !Error::UnknownInterface {
                iface: "eth0".into()
            }
            .is_out_of_descriptors()
        );
    }
}
