//! `cargo xtask package` as a release runs it, and the .deb as an operator
//! installs it: both packages carry the binary, the man page, the
//! completions, the unit and its settings (a conffile / `%config(noreplace)`,
//! mode 0600) and declare libc; the installed `xdptop --version` is the
//! build's, the man page renders, the units pass `systemd-analyze verify`,
//! an edited settings file survives a reinstall, and a purge leaves nothing.
//! The .rpm is installed, reinstalled and erased under a scratch --root.
//!
//! Root (dpkg -i). Skipped, saying why, where dpkg, rpm, man or
//! systemd-analyze is missing (`scripts/setup.sh` installs them). The
//! packages go to a temporary directory; the package is purged and the
//! directory removed also when an assertion fails.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

fn installed(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// Purges the package (if installed) and removes the temporary directory
/// when the test ends, passed or not.
struct Cleanup {
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if package_installed() {
            let _ = Command::new("dpkg").args(["--purge", "xdptop"]).output();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn package_installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status}", "xdptop"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty() && o.stdout != b"not-installed")
}

/// `dpkg-deb -c` / `rpm -qpl` style listing as (mode, path) pairs.
fn deb_listing(deb: &Path) -> Vec<(String, String)> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let path = words.last().expect("a path").trim_start_matches('.');
            (words[0].to_owned(), path.to_owned())
        })
        .collect()
}

const DEB_FILES: [(&str, &str); 8] = [
    ("-rwxr-xr-x", "/usr/bin/xdptop"),
    ("-rw-r--r--", "/usr/share/man/man8/xdptop.8.gz"),
    (
        "-rw-r--r--",
        "/usr/share/bash-completion/completions/xdptop",
    ),
    ("-rw-r--r--", "/usr/share/zsh/vendor-completions/_xdptop"),
    (
        "-rw-r--r--",
        "/usr/share/fish/vendor_completions.d/xdptop.fish",
    ),
    ("-rw-r--r--", "/usr/lib/systemd/system/xdptop.service"),
    ("-rw-------", "/etc/default/xdptop"),
    ("-rw-r--r--", "/usr/share/doc/xdptop/copyright"),
];

const RPM_FILES: [(&str, &str); 7] = [
    ("-rwxr-xr-x", "/usr/bin/xdptop"),
    ("-rw-r--r--", "/usr/share/man/man8/xdptop.8.gz"),
    (
        "-rw-r--r--",
        "/usr/share/bash-completion/completions/xdptop",
    ),
    ("-rw-r--r--", "/usr/share/zsh/site-functions/_xdptop"),
    (
        "-rw-r--r--",
        "/usr/share/fish/vendor_completions.d/xdptop.fish",
    ),
    ("-rw-r--r--", "/usr/lib/systemd/system/xdptop.service"),
    ("-rw-------", "/etc/sysconfig/xdptop"),
];

#[test]
fn packages_carry_everything_and_the_deb_installs_and_purges_cleanly() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: installing the .deb needs root; run it with `cargo xtask test`");
        return;
    }
    let missing: Vec<&str> = [
        "dpkg-deb",
        "dpkg",
        "rpm",
        "rpm2archive",
        "man",
        "systemd-analyze",
    ]
    .into_iter()
    .filter(|t| !installed(t))
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {} not installed (scripts/setup.sh installs dpkg-dev, rpm, man-db, \
             groff-base and systemd)",
            missing.join(", ")
        );
        return;
    }
    assert!(
        !package_installed() && !Path::new("/usr/bin/xdptop").exists(),
        "an xdptop is installed on this machine already; this test installs and purges its \
         own package: remove it first (dpkg --purge xdptop)"
    );

    let dir = std::env::temp_dir().join(format!("xdptop-package-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let cleanup = Cleanup { dir: dir.clone() };

    let out = run(Command::new(XTASK)
        .current_dir(xdp_lab::workspace_root())
        .args(["package", "--out"])
        .arg(&dir));
    let printed = String::from_utf8_lossy(&out.stdout);
    let deb = dir.join(format!("xdptop_{VERSION}_amd64.deb"));
    let rpm = dir.join(format!("xdptop-{VERSION}-1.x86_64.rpm"));
    for p in [&deb, &rpm] {
        assert!(
            p.is_file(),
            "{} missing; xtask printed:\n{printed}",
            p.display()
        );
        assert!(printed.contains(&*p.to_string_lossy()), "{printed}");
    }

    check_deb(&deb);
    check_rpm(&rpm, &dir);
    rpm_in_a_scratch_root(&rpm, &dir);
    install_use_and_purge(&deb, &dir);
    drop(cleanup);
    assert!(!dir.exists());
}

fn check_deb(deb: &Path) {
    let listing = deb_listing(deb);
    for (mode, path) in DEB_FILES {
        assert!(
            listing.iter().any(|(m, p)| m == mode && p == path),
            "{path} with {mode} not in the .deb: {listing:#?}"
        );
    }
    let conffiles = stdout(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/default/xdptop");
    // cargo-deb's systemd scripts: reload, stop on removal, forget on purge;
    // nothing enables or starts the service.
    let script = |name: &str| stdout(Command::new("dpkg-deb").arg("-I").arg(deb).arg(name));
    assert!(script("prerm").contains("deb-systemd-invoke stop xdptop.service"));
    assert!(script("postrm").contains("deb-systemd-helper purge xdptop.service"));
    let postinst = script("postinst");
    assert!(postinst.contains("daemon-reload"), "{postinst}");
    assert!(
        !postinst.contains("deb-systemd-invoke start") && !postinst.contains("$_dh_action"),
        "the package must not start or enable the service:\n{postinst}"
    );
    let depends = stdout(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Depends"));
    assert!(depends.contains("libc6"), "Depends: {depends}");
    assert!(
        !depends.contains("libbpf") && !depends.contains("libxdp"),
        "{depends}"
    );
}

fn check_rpm(rpm: &Path, dir: &Path) {
    let query = |args: &[&str]| stdout(Command::new("rpm").arg("-qp").args(args).arg(rpm));
    let files = query(&["-l"]);
    let modes = query(&["--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]"]);
    for (mode, path) in RPM_FILES {
        assert!(
            files.lines().any(|l| l == path),
            "{path} not in the .rpm:\n{files}"
        );
        assert!(
            modes.lines().any(|l| l == format!("{mode} {path}")),
            "{path} is not {mode}:\n{modes}"
        );
    }
    assert_eq!(query(&["--configfiles"]).trim(), "/etc/sysconfig/xdptop");
    // %config(noreplace): rpm prints the flags as "cn".
    let flags = query(&["--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]"]);
    assert!(
        flags.lines().any(|l| l == "cn /etc/sysconfig/xdptop"),
        "not %config(noreplace):\n{flags}"
    );
    let requires = query(&["-R"]);
    assert!(requires.contains("libc.so.6"), "rpm -qpR:\n{requires}");
    assert!(
        !requires.contains("libbpf") && !requires.contains("libxdp"),
        "{requires}"
    );
    // The rpm's unit reads /etc/sysconfig; check it beside the deb's later.
    let unit = dir.join("rpm-unit/xdptop.service");
    fs::create_dir_all(unit.parent().expect("parent")).expect("mkdir");
    let tar = run(Command::new("rpm2archive")
        .arg("-")
        .stdin(fs::File::open(rpm).expect("rpm")));
    let mut extract = Command::new("tar")
        .args(["-xzO", "./usr/lib/systemd/system/xdptop.service"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tar");
    {
        use std::io::Write as _;
        let mut stdin = extract.stdin.take().expect("stdin");
        stdin.write_all(&tar.stdout).expect("write to tar");
    }
    let text = extract.wait_with_output().expect("tar");
    assert!(text.status.success(), "tar: {}", text.status);
    let text = String::from_utf8(text.stdout).expect("utf-8");
    assert!(
        text.lines()
            .any(|l| l == "EnvironmentFile=-/etc/sysconfig/xdptop"),
        "{text}"
    );
    fs::write(&unit, text).expect("write the rpm's unit");
}

/// This is not an rpm system: install the .rpm under a scratch --root
/// (no dependencies, no scriptlets) to see its files land with their modes,
/// its binary's version, %config(noreplace) keep an edit across a
/// reinstall, and an erase remove everything (the edited settings saved as
/// .rpmsave, as rpm does).
fn rpm_in_a_scratch_root(rpm: &Path, dir: &Path) {
    let root = dir.join("rpm-root");
    fs::create_dir_all(&root).expect("scratch root");
    let rpm_cmd = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--root")
            .arg(&root)
            .args(["--nodeps", "--noscripts"])
            .args(args);
        c
    };
    run(rpm_cmd(&["-i"]).arg(rpm));
    for (mode, path) in RPM_FILES {
        let file = root.join(path.trim_start_matches('/'));
        let meta = fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let want = if mode == "-rwxr-xr-x" {
            0o755
        } else if mode == "-rw-------" {
            0o600
        } else {
            0o644
        };
        assert_eq!(
            meta.permissions().mode() & 0o777,
            want,
            "{}",
            file.display()
        );
    }
    let version = stdout(Command::new(root.join("usr/bin/xdptop")).arg("--version"));
    assert_eq!(version, format!("xdptop {}\n", xdptop::cli::VERSION));

    let settings = root.join("etc/sysconfig/xdptop");
    let mut edited = fs::read_to_string(&settings).expect("settings");
    edited.push_str("XDPTOP_ARGS=\"--otlp collector:4317 eth1\"\n");
    fs::write(&settings, &edited).expect("edit");
    run(rpm_cmd(&["-U", "--replacepkgs"]).arg(rpm));
    assert_eq!(fs::read_to_string(&settings).expect("settings"), edited);

    run(&mut rpm_cmd(&["-e", "xdptop"]));
    for (_, path) in RPM_FILES {
        assert!(
            !root.join(path.trim_start_matches('/')).exists(),
            "{path} left"
        );
    }
    assert_eq!(
        fs::read_to_string(root.join("etc/sysconfig/xdptop.rpmsave")).expect(".rpmsave"),
        edited
    );
}

fn install_use_and_purge(deb: &Path, dir: &Path) {
    run(Command::new("dpkg").arg("-i").arg(deb));
    let owned: Vec<PathBuf> = stdout(Command::new("dpkg").args(["-L", "xdptop"]))
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    assert!(
        owned.iter().any(|p| p == Path::new("/usr/bin/xdptop")),
        "{owned:?}"
    );

    // The version line of the very build this xtask links.
    let version = stdout(Command::new("/usr/bin/xdptop").arg("--version"));
    eprintln!("installed: {}", version.trim());
    assert_eq!(version, format!("xdptop {}\n", xdptop::cli::VERSION));
    assert!(
        version.starts_with(&format!("xdptop {VERSION} (")),
        "{version}"
    );

    let settings = Path::new("/etc/default/xdptop");
    let mode = fs::metadata(settings)
        .expect("settings")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let conffiles = stdout(Command::new("dpkg-query").args(["-W", "-f", "${Conffiles}", "xdptop"]));
    assert!(conffiles.contains("/etc/default/xdptop"), "{conffiles}");

    let man = run(Command::new("man")
        .args(["-l", "/usr/share/man/man8/xdptop.8.gz"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8"));
    let page = String::from_utf8_lossy(&man.stdout);
    let warnings = String::from_utf8_lossy(&man.stderr);
    assert!(warnings.trim().is_empty(), "man -l warned: {warnings}");
    for text in [
        "xdptop(8)",
        "--otlp-protocol",
        "DASHBOARD KEYS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "XDPTOP_PIN_DIR",
        "FILES",
        "/etc/sysconfig/xdptop",
        "CAPABILITIES",
        "CAP_PERFMON",
        xdptop::cli::VERSION,
    ] {
        assert!(
            page.contains(text),
            "no {text:?} in the rendered page:\n{page}"
        );
    }

    for unit in [
        PathBuf::from("/usr/lib/systemd/system/xdptop.service"),
        dir.join("rpm-unit/xdptop.service"),
    ] {
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .expect("systemd-analyze");
        let said = String::from_utf8_lossy(&verify.stderr);
        assert!(
            verify.status.success() && !said.contains("xdptop"),
            "systemd-analyze verify {}: {}\n{said}",
            unit.display(),
            verify.status
        );
    }
    let installed_unit =
        fs::read_to_string("/usr/lib/systemd/system/xdptop.service").expect("unit");
    assert!(
        installed_unit
            .lines()
            .any(|l| l == "EnvironmentFile=-/etc/default/xdptop")
    );

    let complete = stdout(
        Command::new("bash")
            .arg("-c")
            .arg("source /usr/share/bash-completion/completions/xdptop && complete -p xdptop"),
    );
    assert!(complete.contains("xdptop"), "{complete}");

    // An operator's edit survives a reinstall (dpkg keeps a changed conffile).
    let mut edited = fs::read_to_string(settings).expect("settings");
    edited.push_str("XDPTOP_ARGS=\"--otlp collector:4317 eth1\"\n");
    fs::write(settings, &edited).expect("edit settings");
    run(Command::new("dpkg").arg("-i").arg(deb));
    assert_eq!(fs::read_to_string(settings).expect("settings"), edited);

    run(Command::new("dpkg").args(["--purge", "xdptop"]));
    assert!(!package_installed(), "still installed after the purge");
    let left: Vec<&PathBuf> = owned.iter().filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "left after the purge: {left:?}");
    for path in [
        "/etc/default/xdptop",
        "/usr/share/doc/xdptop",
        "/var/lib/dpkg/info/xdptop.list",
        "/var/lib/dpkg/info/xdptop.postinst",
        "/etc/systemd/system/xdptop.service",
        "/var/lib/systemd/deb-systemd-helper-masked/xdptop.service",
    ] {
        assert!(!Path::new(path).exists(), "{path} left after the purge");
    }
    let helper = Path::new("/var/lib/systemd/deb-systemd-helper-enabled");
    if let Ok(entries) = fs::read_dir(helper) {
        let left: Vec<_> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("xdptop"))
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "systemd state left: {left:?}");
    }
}
