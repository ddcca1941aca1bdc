//! xdptop's dashboard in a real terminal: a tmux server of its own, for the
//! TUI tests, the demo's test and the screenshots.

use std::{
    fs,
    path::PathBuf,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context as _, anyhow};

use crate::{output, poll};

/// The one session of the server.
const SESSION: &str = "main";

/// A tmux server on its own socket (no user configuration) with one
/// detached session; the server is killed and its files removed on drop.
pub struct Tmux {
    socket: PathBuf,
    conf: PathBuf,
}

impl Tmux {
    /// Starts a server on `socket` whose session runs `command` in a pane of
    /// `width` × `height`: there is no status line, so the pane is the whole
    /// window.
    pub fn start(
        socket: PathBuf,
        width: usize,
        height: usize,
        command: &str,
    ) -> anyhow::Result<Self> {
        let conf = socket.with_extension("conf");
        fs::write(&conf, "set -g status off\n")
            .with_context(|| format!("writing {}", conf.display()))?;
        // Made before the server, so a failed start is cleaned up too.
        let tmux = Self { socket, conf };
        output(
            tmux.command()
                .arg("-f")
                .arg(&tmux.conf)
                .args(["new-session", "-d", "-s", SESSION, "-x"])
                .arg(width.to_string())
                .arg("-y")
                .arg(height.to_string())
                .arg(command),
        )?;
        Ok(tmux)
    }

    /// `tmux` talking to this server.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket);
        cmd
    }

    /// The pane's text; with `colours`, with its escape sequences too.
    pub fn capture(&self, colours: bool) -> anyhow::Result<String> {
        let mut cmd = self.command();
        cmd.args(["capture-pane", "-p", "-t", SESSION]);
        if colours {
            cmd.arg("-e");
        }
        output(&mut cmd)
    }

    /// Types `key` (a tmux key name such as `q`, `Enter` or `Escape`).
    pub fn keys(&self, key: &str) -> anyhow::Result<()> {
        output(self.command().args(["send-keys", "-t", SESSION, key])).map(drop)
    }

    /// `format` (e.g. `#{pane_pid}`) as tmux expands it for the pane.
    pub fn display(&self, format: &str) -> anyhow::Result<String> {
        let out = output(
            self.command()
                .args(["display-message", "-p", "-t", SESSION, format]),
        )?;
        Ok(out.trim().to_owned())
    }

    /// Captures the pane until `done` holds for it and returns that screen;
    /// fails after `timeout` with the last screen, or once `stop` is set.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        stop: Option<&AtomicBool>,
        mut done: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<String> {
        // Ok ends the wait (with the screen or an error), Err goes on.
        poll(timeout, Duration::from_millis(200), || {
            match self.capture(false) {
                Ok(screen) if done(&screen) => Ok(Ok(screen)),
                Err(e) => Ok(Err(e)),
                _ if stop.is_some_and(|s| s.load(Ordering::Relaxed)) => {
                    Ok(Err(anyhow!("interrupted")))
                }
                Ok(screen) => Err(screen),
            }
        })
        .unwrap_or_else(|screen| {
            Err(anyhow!(
                "no {what} on the screen within {timeout:?}; it shows:\n{screen}"
            ))
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_file(&self.conf);
    }
}

/// The PPS column of `iface`'s row in xdptop's overview, in packets/s.
pub fn row_pps(screen: &str, iface: &str) -> Option<f64> {
    let line = screen.lines().find(|l| {
        l.trim_start_matches(['│', ' ', '›'])
            .starts_with(&format!("{iface} "))
    })?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.ends_with("pps"))?;
    let value: f64 = words.get(at.checked_sub(1)?)?.parse().ok()?;
    let scale = match words[at] {
        "pps" => 1.0,
        "kpps" => 1e3,
        "Mpps" => 1e6,
        _ => return None,
    };
    Some(value * scale)
}
