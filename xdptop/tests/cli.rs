//! Bad input everywhere, through the real binary: every flag's invalid
//! values, absurd intervals, odd interface names, hundreds of names. Each
//! must give exit code 2 and one line on stderr, never a panic or a
//! screenful. Nothing here needs root: validation comes before any privilege
//! check or kernel call.

use std::{
    ffi::OsString,
    os::unix::ffi::OsStringExt as _,
    process::{Command, Output},
};

const XDPTOP: &str = env!("CARGO_BIN_EXE_xdptop");

fn run<I, S>(args: I, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut cmd = Command::new(XDPTOP);
    cmd.args(args.into_iter().map(Into::into))
        .env_remove("RUST_BACKTRACE")
        .env_remove("XDPTOP_PIN_DIR");
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running xdptop")
}

/// Exit code 2, one `xdptop: ...` line that contains `needle`, no panic.
#[track_caller]
fn assert_usage_error(out: &Output, needle: &str, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit code; stderr: {err}"
    );
    assert!(out.stdout.is_empty(), "{what}: nothing on stdout");
    assert!(!err.contains("panicked"), "{what}: panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line, got: {err}");
    assert!(lines[0].starts_with("xdptop: "), "{what}: {err}");
    assert!(
        lines[0].len() < 400,
        "{what}: short: {} bytes",
        lines[0].len()
    );
    assert!(
        lines[0].contains(needle),
        "{what}: the message should mention {needle:?}: {err}"
    );
}

#[test]
fn every_flags_invalid_values_are_one_line_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--count", "0", "lo"], "--count"),
        (&["--count", "-1", "lo"], "--count"),
        (&["--count", "1.5", "lo"], "--count"),
        (&["--count", "x", "lo"], "--count"),
        (&["--count", "", "lo"], "--count"),
        (
            &[
                "--count",
                "99999999999999999999999999999999999999999999",
                "lo",
            ],
            "--count",
        ),
        (&["--count", "18446744073709551616", "lo"], "--count"),
        (&["--talkers", "0", "lo"], "--talkers"),
        (&["--talkers", "-1", "lo"], "--talkers"),
        (&["--talkers", "1001", "lo"], "--talkers"),
        (&["--talkers", "x", "lo"], "--talkers"),
        (&["--talkers", "", "lo"], "--talkers"),
        (
            &[
                "--talkers",
                "99999999999999999999999999999999999999999999",
                "lo",
            ],
            "--talkers",
        ),
        (
            &["--talkers", "5", "--headless", "lo"],
            "--talkers --headless needs --json",
        ),
        (&["--talkers-table", "4096", "lo"], "--talkers-table"),
        (
            &["--talkers", "5", "--talkers-table", "8", "lo"],
            "--talkers-table",
        ),
        (
            &["--talkers", "5", "--talkers-table", "4194305", "lo"],
            "--talkers-table",
        ),
        (
            &["--talkers", "5", "--talkers-table", "x", "lo"],
            "--talkers-table",
        ),
        (&["--interval", "0", "lo"], "--interval"),
        (&["--interval", "0s", "lo"], "--interval"),
        (&["--interval", "1ns", "lo"], "--interval"),
        (&["--interval", "9ms", "lo"], "--interval"),
        (&["--interval", "3601s", "lo"], "--interval"),
        (&["--interval", "100years", "lo"], "--interval"),
        (
            &["--interval", "99999999999999999999999h", "lo"],
            "--interval",
        ),
        (&["--interval", "-1s", "lo"], "-1"),
        (&["--interval", "fast", "lo"], "--interval"),
        (&["--interval", "", "lo"], "--interval"),
        (&["--interval", "1", "lo"], "--interval"),
        (&["--mode", "turbo", "lo"], "--mode"),
        (&["--mode", "", "lo"], "--mode"),
        (&["--mode", "NATIVE", "lo"], "--mode"),
        (&["--otlp", "", "lo"], "--otlp"),
        (&["--otlp", "garbage", "lo"], "--otlp"),
        (&["--otlp", "::::", "lo"], "--otlp"),
        (&["--otlp", "http://", "lo"], "--otlp"),
        (&["--otlp", "http://[::1", "lo"], "--otlp"),
        (&["--otlp", "localhost:99999", "lo"], "out of range"),
        (&["--otlp", "localhost:0", "lo"], "--otlp"),
        (&["--otlp", "gopher://x:70", "lo"], "--otlp"),
        (&["--otlp", "http://u:p@x:1", "lo"], "--otlp"),
        (
            &["--otlp", "x:1", "--otlp-protocol", "smoke", "lo"],
            "--otlp-protocol",
        ),
        (
            &["--otlp", "x:1", "--otlp-header", "novalue", "lo"],
            "header",
        ),
        (&["--otlp", "x:1", "--otlp-header", "=v", "lo"], "header"),
        (
            &["--otlp", "x:1", "--otlp-header", "bad name=v", "lo"],
            "header",
        ),
        (
            &["--otlp", "x:1", "--otlp-header", "k=bad\u{7f}", "lo"],
            "header",
        ),
        (
            &[
                "--otlp",
                "https://x:1",
                "--otlp-ca-file",
                "/nonexistent/ca.pem",
                "lo",
            ],
            "CA file",
        ),
        (
            &[
                "--otlp",
                "https://x:1",
                "--otlp-ca-file",
                "/etc/hostname",
                "lo",
            ],
            "CA",
        ),
        (&["--prometheus", "garbage", "lo"], "--prometheus"),
        (&["--prometheus", "", "lo"], "--prometheus"),
        (&["--prometheus", "9464", "lo"], "--prometheus"),
        (&["--prometheus", "localhost:9464", "lo"], "--prometheus"),
        (&["--prometheus", "127.0.0.1:65536", "lo"], "--prometheus"),
        (&["--prometheus", "1.2.3.4.5:1", "lo"], "--prometheus"),
        (&["--pin-dir", "", "lo"], "--pin-dir"),
        (&["--pin-dir", "relative/dir", "lo"], "--pin-dir"),
        (&["--json", "lo"], "--headless"),
        (&["--detach", "--count", "1", "lo"], "--detach"),
        (&["--detach", "--otlp", "x:1", "lo"], "--detach"),
        (
            &["--detach", "--prometheus", "127.0.0.1:1", "lo"],
            "--detach",
        ),
        (&["--headless"], "interface"),
        (&[], "interface"),
        (&["--bogus", "lo"], "--bogus"),
        (&["-z", "lo"], "-z"),
        (&["--headless=yes", "lo"], "--headless"),
        (&["lo", "lo"], "twice"),
    ];
    for (args, needle) in cases {
        let out = run(args.iter().copied(), &[]);
        assert_usage_error(&out, needle, &format!("{args:?}"));
    }
}

#[test]
fn interface_names_the_kernel_would_refuse() {
    let too_long = "a".repeat(16);
    let cases: Vec<(OsString, &str)> = vec![
        (too_long.clone().into(), "15 bytes"),
        ("x".repeat(100_000).into(), "15 bytes"),
        ("".into(), "empty"),
        ("a/b".into(), "not a valid"),
        ("a:b".into(), "not a valid"),
        ("a b".into(), "not a valid"),
        ("tab\tname".into(), "not a valid"),
        (".".into(), "not a valid"),
        ("..".into(), "not a valid"),
        (OsString::from_vec(vec![b'e', b't', 0xff, b'0']), "UTF-8"),
        (OsString::from_vec(vec![0xc3, 0x28]), "UTF-8"),
        // 5 characters, 16 bytes: the limit is in bytes.
        ("ééééééé€".into(), "15 bytes"),
    ];
    for (name, needle) in cases {
        let mut shown = format!("{name:?}");
        shown.truncate(40);
        let out = run([OsString::from("--headless"), name], &[]);
        assert_usage_error(&out, needle, &shown);
    }
}

#[test]
fn hundreds_of_names_give_one_short_error() {
    // 500 distinct valid names that do not exist; one typo among them.
    let mut names: Vec<String> = (0..500).map(|i| format!("nosuch{i}")).collect();
    names[250] = "x".repeat(40);
    let out = run(
        std::iter::once("--headless".to_owned()).chain(names.clone()),
        &[],
    );
    assert_usage_error(&out, "15 bytes", "500 names with one too long");

    // 500 names, one repeated at the end.
    names[250] = "nosuch250".into();
    names.push("nosuch3".into());
    let out = run(std::iter::once("--headless".to_owned()).chain(names), &[]);
    assert_usage_error(&out, "nosuch3", "a duplicate among 501 names");
}

#[test]
fn hundreds_of_unknown_interfaces_fail_at_the_first_without_a_flood() {
    // Valid command line: what happens next depends on privileges, but it
    // must be one line naming the first problem, not 500.
    let names: Vec<String> = (0..500).map(|i| format!("nosuch{i}")).collect();
    let out = run(
        ["--headless", "--pin-dir", "/nonexistent-bpffs"]
            .into_iter()
            .map(str::to_owned)
            .chain(names),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.len() < 1000, "{} bytes", err.len());
}

#[test]
fn a_pasted_blob_as_a_value_does_not_come_back_in_full() {
    // Just under Linux's limit for one argument (MAX_ARG_STRLEN, 128 KiB).
    let blob = "z".repeat(100_000);
    for args in [
        vec!["--mode", blob.as_str(), "lo"],
        vec!["--otlp", blob.as_str(), "lo"],
        vec!["--prometheus", blob.as_str(), "lo"],
        vec!["--interval", blob.as_str(), "lo"],
        vec![blob.as_str()],
    ] {
        let out = run(args.iter().copied(), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", &err[..err.len().min(200)]);
        assert!(err.len() < 1000, "{} bytes for {}", err.len(), args[0]);
        assert_eq!(err.lines().count(), 1);
    }
}

#[test]
fn bad_environment_values_are_usage_errors_too() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "garbage",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "carrier-pigeon",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "soon",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        (
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "-5",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "novalue",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "novalue",
            "OTEL_RESOURCE_ATTRIBUTES",
        ),
    ];
    for (k, v, needle) in cases {
        let mut env = vec![(*k, *v)];
        if !k.ends_with("ENDPOINT") {
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"));
        }
        let out = run(["--headless", "lo"], &env);
        assert_usage_error(&out, needle, &format!("{k}={v}"));
    }
    let out = run(["--headless", "lo"], &[("XDPTOP_PIN_DIR", "relative")]);
    assert_usage_error(&out, "--pin-dir", "XDPTOP_PIN_DIR=relative");
}

#[test]
fn help_and_version_still_print_and_succeed() {
    let out = run(["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--interval") && help.contains("Privileges"),
        "{help}"
    );
    let out = run(["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let version = String::from_utf8_lossy(&out.stdout);
    let want = format!("xdptop {} (", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&want), "{version}");
    assert!(
        version.trim_end().ends_with(", features: none)"),
        "{version}"
    );
    // The commit HEAD was at when the binary was built (the test binary was
    // built from the same tree), or "unknown commit" outside a checkout.
    let head = std::process::Command::new("git")
        .args(["-c", "safe.directory=*", "-C", env!("CARGO_MANIFEST_DIR")])
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match (std::env::var("XDPTOP_GIT_COMMIT"), head) {
        (Ok(c), _) if !c.is_empty() => {
            assert!(version.contains(&format!("(commit {c},")), "{version}")
        }
        // HEAD, or an ancestor of it: a commit made after the build (while
        // this suite ran) moves HEAD but not the binary.
        (_, Some(h)) => {
            let built = version
                .split("(commit ")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or_else(|| panic!("no commit in {version}"));
            let ancestor = std::process::Command::new("git")
                .args(["-c", "safe.directory=*", "-C", env!("CARGO_MANIFEST_DIR")])
                .args(["merge-base", "--is-ancestor", built, "HEAD"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(built == h || ancestor, "{version} (HEAD is {h})");
        }
        _ => assert!(version.contains("(unknown commit,"), "{version}"),
    }
    assert_eq!(
        run(["-V"], &[]).stdout,
        out.stdout,
        "-V and --version agree"
    );
}

#[test]
fn many_verbose_flags_do_not_overflow() {
    // A valid command line that then fails for want of a terminal (exit 1):
    // the point is that 300 -v do not panic on a u8 counter.
    let v = format!("-{}", "v".repeat(300));
    let out = run([v.as_str(), "lo"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(out.status.code(), Some(1 | 2)), "{err}");
}
