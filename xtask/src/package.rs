//! `cargo xtask package`: `target/package/xdptop_VERSION_amd64.deb` and
//! `target/package/xdptop-VERSION-1.x86_64.rpm` from one release build.
//!
//! xtask generates what the packages carry besides the binary into
//! `target/release/package-assets/`: the man page `xdptop.8` (clap_mangen,
//! from the same `Cli` as `--help`, plus `xdptop::manual`), the bash, zsh
//! and fish completions (clap_complete), and the unit and settings file for
//! each distribution family (Debian reads `/etc/default/xdptop`, RHEL
//! `/etc/sysconfig/xdptop`). cargo-deb and cargo-generate-rpm then build the
//! archives from the metadata in `xdptop/Cargo.toml`, without building
//! again. Both tools are pinned here and installed on first use into
//! `target/xtask-tools/` (or taken from `CARGO_DEB` / `CARGO_GENERATE_RPM`).

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use clap::CommandFactory as _;
use clap_mangen::roff::{Roff, bold, italic, roman};
use xdptop::manual;

use crate::exec::{cargo_build, exec, output, target_dir, workspace_root};

#[derive(clap::Args)]
pub struct Options {
    /// Package target/release/xdptop as it is, without `cargo build --release`.
    #[arg(long)]
    no_build: bool,
    /// Directory for the .deb and the .rpm [default: target/package].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// A cargo subcommand that builds packages, pinned to a version known to
/// build with this toolchain and to understand xdptop's metadata.
struct Tool {
    krate: &'static str,
    version: &'static str,
    subcommand: &'static str,
    env: &'static str,
}

const CARGO_DEB: Tool = Tool {
    krate: "cargo-deb",
    version: "3.8.0",
    subcommand: "deb",
    env: "CARGO_DEB",
};
const GENERATE_RPM: Tool = Tool {
    krate: "cargo-generate-rpm",
    version: "0.21.1",
    subcommand: "generate-rpm",
    env: "CARGO_GENERATE_RPM",
};

/// Package version (the workspace's) and the names both tools give.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn deb_name() -> String {
    format!("xdptop_{VERSION}_amd64.deb")
}

pub fn rpm_name() -> String {
    format!("xdptop-{VERSION}-1.x86_64.rpm")
}

/// Where the packages and their generated assets go.
pub fn package_dir() -> PathBuf {
    workspace_root().join("target/package")
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    let root = workspace_root();
    let out = opts.out.clone().unwrap_or_else(package_dir);
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = fs::canonicalize(&out).with_context(|| format!("resolving {}", out.display()))?;
    // Tools first: a missing one should fail before a long build.
    // cargo-deb only warns without dpkg-shlibdeps and leaves Depends empty.
    for (program, arg, install) in [
        ("dpkg-shlibdeps", "--version", "apt-get install dpkg-dev"),
        ("gzip", "--version", "apt-get install gzip"),
    ] {
        output(Command::new(program).arg(arg)).with_context(|| {
            format!("{program} is needed to make the packages: {install} (scripts/setup.sh does)")
        })?;
    }
    let cargo_deb = tool(&CARGO_DEB)?;
    let generate_rpm = tool(&GENERATE_RPM)?;

    let release = if opts.no_build {
        target_dir().join("release")
    } else {
        cargo_build(true, &["-p", "xdptop", "--bin", "xdptop"])?
    };
    let binary = release.join("xdptop");
    if !binary.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p xdptop`",
            binary.display()
        );
    }

    // Where xdptop/Cargo.toml's metadata expects them.
    let assets = release.join("package-assets");
    if assets.exists() {
        fs::remove_dir_all(&assets).with_context(|| format!("removing {}", assets.display()))?;
    }
    write_assets(&root, &assets)?;
    // cargo-deb's `unit-scripts` is a path in the source tree, not mapped
    // to CARGO_TARGET_DIR like the assets: the deb's unit goes there too.
    let deb_units = root.join("target/release/package-assets/deb");
    if deb_units != assets.join("deb") {
        fs::create_dir_all(&deb_units)
            .and_then(|()| {
                fs::copy(
                    assets.join("deb/xdptop.service"),
                    deb_units.join("xdptop.service"),
                )
            })
            .with_context(|| format!("writing {}", deb_units.display()))?;
    }
    for name in [deb_name(), rpm_name()] {
        let _ = fs::remove_file(out.join(name));
    }

    // --no-strip: the .deb and the .rpm carry the very same binary.
    exec(
        Command::new(&cargo_deb)
            .current_dir(&root)
            .args([
                CARGO_DEB.subcommand,
                "-p",
                "xdptop",
                "--no-build",
                "--no-strip",
            ])
            .arg("--output")
            .arg(out.join(deb_name()))
            // It prints the path; we print both below.
            .stdout(std::process::Stdio::null()),
    )?;
    exec(
        Command::new(&generate_rpm)
            .current_dir(&root)
            .args([GENERATE_RPM.subcommand, "-p", "xdptop", "-o"])
            .arg(out.join(rpm_name())),
    )?;
    for name in [deb_name(), rpm_name()] {
        let path = out.join(&name);
        if !path.is_file() {
            bail!(
                "expected {} after packaging, it is not there",
                path.display()
            );
        }
        println!("{}", path.display());
    }
    Ok(())
}

/// The man page, completions, units and settings files the metadata in
/// xdptop/Cargo.toml points at.
fn write_assets(root: &Path, dir: &Path) -> anyhow::Result<()> {
    for sub in ["", "deb", "rpm"] {
        fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };

    let man = dir.join("xdptop.8");
    write("xdptop.8", &man_page()?)?;
    // -n: no name or time in the header, so the same page gives the same file.
    exec(Command::new("gzip").args(["-9", "-n", "-f"]).arg(&man))
        .context("compressing the man page (gzip is needed)")?;

    for (shell, name) in [
        (clap_complete::Shell::Bash, "xdptop.bash"),
        (clap_complete::Shell::Zsh, "_xdptop"),
        (clap_complete::Shell::Fish, "xdptop.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut xdptop::cli::Cli::command(), "xdptop", &mut buf);
        write(name, &buf)?;
    }

    let unit = read(&root.join("packaging/xdptop.service"))?;
    let settings = read(&root.join("packaging/xdptop.default"))?;
    write(
        "deb/xdptop.service",
        unit_for(&unit, "/etc/default/xdptop")?.as_bytes(),
    )?;
    write(
        "rpm/xdptop.service",
        unit_for(&unit, "/etc/sysconfig/xdptop")?.as_bytes(),
    )?;
    write("rpm/xdptop.sysconfig", sysconfig(&settings)?.as_bytes())?;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The unit a package installs: packaging/xdptop.service with the binary in
/// /usr/bin, the distribution's settings file, the man page as its
/// documentation, and a header for the installed copy instead of the
/// manual-install notes.
pub fn unit_for(source: &str, settings: &str) -> anyhow::Result<String> {
    let start = source
        .find("\n[Unit]")
        .context("packaging/xdptop.service has no [Unit] section")?;
    let privileges: Vec<&str> = source[..start]
        .lines()
        .skip_while(|l| !l.starts_with("# Privileges:"))
        .take_while(|l| *l != "#")
        .collect();
    let mut out = format!(
        "# xdptop as a daemon: headless, pushing every sample over OTLP.\n\
         # Installed by the xdptop package; see xdptop(8).\n\
         #\n\
         # Settings: {settings} (mode 0600: it may hold an auth header):\n\
         # XDPTOP_ARGS (interfaces and flags) and the OTEL_* variables. Then\n\
         #   systemctl enable --now xdptop      (after edits: systemctl restart xdptop)\n\
         #\n"
    );
    for line in &privileges {
        out.push_str(line);
        out.push('\n');
    }
    if !privileges.is_empty() {
        out.push('\n');
    }
    let (mut exec_start, mut env_file) = (0, 0);
    for line in source[start + 1..].lines() {
        if line.starts_with("ExecStart=") {
            if !line.contains("/usr/local/bin/xdptop ") {
                bail!("packaging/xdptop.service: expected /usr/local/bin/xdptop in `{line}`");
            }
            out.push_str(&line.replace("/usr/local/bin/xdptop ", "/usr/bin/xdptop "));
            exec_start += 1;
        } else if line.starts_with("EnvironmentFile=") {
            out.push_str(&format!("EnvironmentFile=-{settings}"));
            env_file += 1;
        } else if let Some(urls) = line.strip_prefix("Documentation=") {
            out.push_str(&format!("Documentation=man:xdptop(8) {urls}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if (exec_start, env_file) != (1, 1) {
        bail!(
            "packaging/xdptop.service: expected one ExecStart= and one EnvironmentFile=, \
             found {exec_start} and {env_file}"
        );
    }
    Ok(out)
}

/// packaging/xdptop.default as /etc/sysconfig/xdptop.
pub fn sysconfig(settings: &str) -> anyhow::Result<String> {
    if !settings.contains("/etc/default/xdptop") {
        bail!("packaging/xdptop.default no longer names /etc/default/xdptop");
    }
    Ok(settings.replace("/etc/default/xdptop", "/etc/sysconfig/xdptop"))
}

/// `xdptop.8`: clap's name, synopsis, description and options, then the
/// keys, capabilities, exit status, environment and files from
/// `xdptop::manual`, the examples from `--help`, and the version.
pub fn man_page() -> anyhow::Result<Vec<u8>> {
    let cmd = xdptop::cli::Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("xdptop {VERSION}"));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let mut r = Roff::new();
    r.control("SH", ["DASHBOARD KEYS"]);
    for (keys, what) in manual::KEYS {
        // Plain words for the arrows: a man page may be read in any locale.
        let keys = keys.replace("↑ ↓", "up down");
        r.control("TP", []).text([bold(keys)]).text([roman(what)]);
    }
    r.control("PP", []).text([roman(manual::KEYS_NOTE)]);

    r.control("SH", ["CAPABILITIES"]);
    for paragraph in manual::CAPABILITIES {
        r.control("PP", []).text([roman(paragraph)]);
    }

    r.control("SH", ["EXIT STATUS"]);
    for (code, what) in manual::EXIT_STATUS {
        r.control("TP", [])
            .text([bold(code.to_string())])
            .text([roman(what)]);
    }

    r.control("SH", ["ENVIRONMENT"]);
    for (name, what) in manual::ENVIRONMENT {
        r.control("TP", []).text([bold(name)]).text([roman(what)]);
    }

    r.control("SH", ["FILES"]);
    for (path, what) in manual::FILES {
        r.control("TP", []).text([italic(path)]).text([roman(what)]);
    }

    let after = cmd
        .get_after_help()
        .context("xdptop's --help lost its examples")?
        .to_string();
    let examples = after
        .split_once("Examples:\n")
        .map(|(_, e)| e)
        .context("xdptop's --help has no `Examples:` block")?;
    r.control("SH", ["EXAMPLES"]);
    r.control("PP", []).control("nf", []).control("RS", ["4"]);
    for line in examples.lines() {
        r.text([roman(line.trim())]);
    }
    r.control("RE", []).control("fi", []);

    r.control("SH", ["SEE ALSO"]);
    let refs: Vec<String> = manual::SEE_ALSO
        .iter()
        .map(|(page, section)| format!("{page}({section})"))
        .collect();
    r.text([roman(refs.join(", "))]);
    r.to_writer(&mut out)?;

    man.render_version_section(&mut out)?;
    Ok(out)
}

/// The tool's binary: `$ENV` if set, else the pinned version in
/// target/xtask-tools/, installed there with `cargo install` on first use.
fn tool(t: &Tool) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(t.env) {
        return Ok(PathBuf::from(path));
    }
    let root = target_dir().join("xtask-tools");
    let bin = root.join("bin").join(t.krate);
    let wanted = format!("{} {}", t.krate, t.version);
    let installed = output(Command::new(&bin).arg(t.subcommand).arg("--version"))
        .is_ok_and(|v| v.trim().ends_with(t.version));
    if installed {
        return Ok(bin);
    }
    eprintln!(
        "xtask: installing {wanted} into {} (once; it builds from crates.io)",
        root.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let spec = format!("{}@{}", t.krate, t.version);
    exec(
        Command::new(cargo)
            .args(["install", "--locked", "--quiet", "--root"])
            .arg(&root)
            .arg(&spec),
    )
    .with_context(|| {
        format!(
            "could not install {wanted} (needs crates.io): install it yourself with \
             `cargo install --locked {spec}` and set {}=$(command -v {})",
            t.env, t.krate
        )
    })?;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("README"))?;
    writeln!(
        f,
        "{wanted}: installed by `cargo xtask package` (xtask/src/package.rs)"
    )?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_source() -> String {
        read(&workspace_root().join("packaging/xdptop.service")).expect("the unit is there")
    }

    #[test]
    fn each_family_s_unit_reads_its_own_settings_from_usr_bin() {
        let source = unit_source();
        for settings in ["/etc/default/xdptop", "/etc/sysconfig/xdptop"] {
            let unit = unit_for(&source, settings).expect("the unit converts");
            let lines: Vec<&str> = unit.lines().collect();
            assert!(
                lines.contains(&format!("EnvironmentFile=-{settings}").as_str()),
                "{unit}"
            );
            assert!(
                lines.contains(&"ExecStart=/usr/bin/xdptop --headless $XDPTOP_ARGS"),
                "{unit}"
            );
            assert!(!unit.contains("/usr/local"), "{unit}");
            assert!(unit.contains("Documentation=man:xdptop(8) "), "{unit}");
            assert!(unit.contains("# Privileges:"), "{unit}");
            // Everything from [Unit] on is the source's but for those lines.
            let body =
                |u: &str| -> usize { u[u.find("[Unit]").expect("[Unit]")..].lines().count() };
            assert_eq!(body(&unit), body(&source));
        }
    }

    #[test]
    fn a_unit_without_the_expected_lines_is_an_error() {
        let err = unit_for(
            "# x\n[Unit]\nExecStart=/opt/xdptop\n",
            "/etc/default/xdptop",
        )
        .expect_err("no /usr/local/bin/xdptop");
        assert!(err.to_string().contains("/usr/local/bin/xdptop"), "{err}");
        let err = unit_for(
            "x\n[Unit]\nExecStart=/usr/local/bin/xdptop a\n",
            "/etc/default/x",
        )
        .expect_err("no EnvironmentFile");
        assert!(err.to_string().contains("found 1 and 0"), "{err}");
    }

    #[test]
    fn the_rpm_settings_name_their_own_path() {
        let deb = read(&workspace_root().join("packaging/xdptop.default")).expect("there");
        let rpm = sysconfig(&deb).expect("converts");
        assert!(rpm.starts_with("# /etc/sysconfig/xdptop:"), "{rpm}");
        assert!(!rpm.contains("/etc/default"));
        assert_eq!(rpm.lines().count(), deb.lines().count());
    }

    #[test]
    fn the_man_page_has_every_option_and_the_operator_sections() {
        let page = String::from_utf8(man_page().expect("renders")).expect("utf-8");
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH xdptop 8"),
            "{page}"
        );
        assert!(page.contains(".TH xdptop 8"), "{page}");
        for section in [
            "SYNOPSIS",
            "OPTIONS",
            "DASHBOARD KEYS",
            "CAPABILITIES",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "EXAMPLES",
            "SEE ALSO",
            "VERSION",
        ] {
            assert!(
                page.contains(&format!(".SH \"{section}\""))
                    || page.contains(&format!(".SH {section}")),
                "no {section} in\n{page}"
            );
        }
        for arg in xdptop::cli::Cli::command().get_arguments() {
            if let Some(long) = arg.get_long() {
                // roff escapes the dashes: \-\-interval
                assert!(
                    page.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                    "--{long}"
                );
            }
        }
        for (name, _) in manual::ENVIRONMENT {
            assert!(page.contains(name), "{name}");
        }
        assert!(page.contains("CAP_BPF") && page.contains("CAP_NET_ADMIN"));
        assert!(page.contains(xdptop::cli::VERSION), "the version line");
        assert!(!page.contains('↑'), "plain words for the arrows");
    }

    #[test]
    fn completions_know_the_flags() {
        let mut buf = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut xdptop::cli::Cli::command(),
            "xdptop",
            &mut buf,
        );
        let bash = String::from_utf8(buf).expect("utf-8");
        assert!(
            bash.contains("--otlp-protocol") && bash.contains("complete -F"),
            "{bash}"
        );
    }
}
