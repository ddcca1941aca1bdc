//! This machine's host name: the header, the OTLP resource's `host.name` and
//! the `/metrics` `host_name` label all read it here.

/// The kernel's host name (`uname -n`), or `unknown`.
pub fn name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
