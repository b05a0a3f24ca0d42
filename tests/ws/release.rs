//! Release artifacts (issue 16): `scripts/release.sh --no-build` over the static build that
//! `scripts/image.sh` made (scripts/test.sh runs it first), and the missing-tool contract of
//! both scripts.

use crate::root;
use crate::ws::image::{archive, TOOLS, VERSION};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn static_dir() -> PathBuf {
    root().join("target/static/x86_64-unknown-linux-gnu/release")
}

fn run_script(script: &str, args: &[&str], path: Option<&Path>) -> Output {
    let mut c = Command::new("bash");
    c.arg(root().join("scripts").join(script))
        .args(args)
        .current_dir(root());
    if let Some(p) = path {
        c.env("PATH", p);
    }
    c.output().unwrap()
}

/// A PATH holding every command of this one except `missing` (symlinks in a temp dir).
fn path_without(missing: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for dir in std::env::split_paths(&path) {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            let link = d.path().join(&name);
            if name != missing && !link.exists() {
                let _ = std::os::unix::fs::symlink(e.path(), link);
            }
        }
    }
    assert!(!d.path().join(missing).exists());
    d
}

fn assert_missing_tool(script: &str, args: &[&str], missing: &str, install: &str, out: &Path) {
    let bin = path_without(missing);
    let o = run_script(script, args, Some(bin.path()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{script} without {missing} succeeded");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].contains(missing) && lines[0].contains(install),
        "{script}: {err}"
    );
    assert!(!out.exists(), "{script} wrote {}", out.display());
}

#[test]
fn image_sh_without_umoci_or_skopeo_names_the_package_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("image");
    let o = out.to_str().unwrap();
    for (tool, install) in [
        ("umoci", "apt-get install -y umoci"),
        ("skopeo", "apt-get install -y skopeo"),
    ] {
        assert_missing_tool("image.sh", &["--no-build", "--out", o], tool, install, &out);
    }
}

#[test]
fn release_sh_without_cargo_deb_or_lintian_names_the_package_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("release-artifacts");
    let o = out.to_str().unwrap();
    for (tool, install) in [
        ("cargo-deb", "cargo install --locked cargo-deb"),
        ("lintian", "apt-get install -y lintian"),
    ] {
        assert_missing_tool(
            "release.sh",
            &["--no-build", "--out", o],
            tool,
            install,
            &out,
        );
    }
}

/// Same binary, same SOURCE_DATE_EPOCH → byte-identical archive and the same digest, across
/// two separate runs of image.sh (each of which also assembles twice and compares).
#[test]
fn image_assembly_is_reproducible() {
    let u = crate::ws::image::Unpacked::new();
    let bin = u.rootfs().join("usr/local/bin/homelab-ops");
    let t = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for n in ["a", "b"] {
        let out = t.path().join(n);
        let o = Command::new("bash")
            .arg(root().join("scripts/image.sh"))
            .arg("--binary")
            .arg(&bin)
            .arg("--out")
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", "1764806400")
            .current_dir(root())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let digest = stdout
            .lines()
            .find_map(|l| l.strip_prefix("digest: sha256:"))
            .expect("digest line")
            .to_string();
        assert!(stdout.contains(&format!(
            "image: ghcr.io/viktorbarzin/homelab-ops:{VERSION}\n"
        )));
        seen.push((
            digest,
            std::fs::read(out.join("homelab-ops.oci.tar")).unwrap(),
        ));
    }
    assert_eq!(seen[0].0, seen[1].0, "digests differ");
    assert!(seen[0].1 == seen[1].1, "archives differ byte-wise");
    // The printed digest is the manifest digest in the archive's index.
    let x = tempfile::tempdir().unwrap();
    std::fs::write(x.path().join("a.tar"), &seen[0].1).unwrap();
    let idx = Command::new("tar")
        .arg("-xOf")
        .arg(x.path().join("a.tar"))
        .arg("index.json")
        .output()
        .unwrap();
    let idx: serde_json::Value = serde_json::from_slice(&idx.stdout).unwrap();
    assert_eq!(
        idx["manifests"][0]["digest"],
        format!("sha256:{}", seen[0].0)
    );
}

fn sh_ok(cmd: &mut Command, what: &str) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Everything `just release` promises, checked from the outside: checksums verify, the
/// tarball's binaries are static and stamped, the .debs carry binary + units (lintian ran
/// clean inside release.sh), completions and man pages for all six, a CycloneDX SBOM.
#[test]
fn release_artifacts_are_complete_and_checksummed() {
    archive();
    assert!(
        static_dir().join("homelab-ops-docs").is_file(),
        "static build missing: run `bash scripts/image.sh` first (scripts/test.sh does)"
    );
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("release-artifacts");
    let o = run_script(
        "release.sh",
        &["--no-build", "--out", out.to_str().unwrap()],
        None,
    );
    assert!(
        o.status.success(),
        "release.sh: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    sh_ok(
        Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&out),
        "sha256sum --check",
    );
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let listed: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    let tarball = format!("homelab-ops-{VERSION}-x86_64-linux-static.tar.gz");
    let mut want: Vec<String> = vec![
        "homelab-ops.oci.tar".into(),
        tarball.clone(),
        format!("homelab-ops-{VERSION}.cdx.json"),
        format!("vault-token-renew_{VERSION}-1_amd64.deb"),
        format!("t3-migrate-idle_{VERSION}-1_amd64.deb"),
    ];
    for t in TOOLS {
        want.push(format!("man/{t}.1"));
        want.push(format!("completions/bash/{t}"));
        want.push(format!("completions/zsh/_{t}"));
        want.push(format!("completions/fish/{t}.fish"));
    }
    want.sort();
    let mut got: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(got, want, "SHA256SUMS covers exactly the artifacts");

    // Tarball: six static binaries that run on the host and print version + commit.
    let x = tempfile::tempdir().unwrap();
    sh_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(out.join(&tarball))
            .arg("-C")
            .arg(x.path()),
        "untar",
    );
    let dir = x
        .path()
        .join(format!("homelab-ops-{VERSION}-x86_64-linux-static"));
    for t in TOOLS {
        let v = sh_ok(Command::new(dir.join(t)).arg("--version"), t);
        assert!(
            v.starts_with(&format!("{t} {VERSION} (commit ")),
            "{t}: {v}"
        );
        let file = sh_ok(Command::new("file").arg(dir.join(t)), "file");
        assert!(file.contains("static"), "{t} not static: {file}");
    }
    assert!(dir.join("LICENSE").is_file() && dir.join("CHANGELOG.md").is_file());

    // .debs: the binary in /usr/bin and the units with ExecStart rewritten to it.
    for (p, unitdir) in [
        ("vault-token-renew", "./usr/lib/systemd/user/"),
        ("t3-migrate-idle", "./lib/systemd/system/"),
    ] {
        let deb = out.join(format!("{p}_{VERSION}-1_amd64.deb"));
        let list = sh_ok(Command::new("dpkg-deb").arg("-c").arg(&deb), "dpkg-deb -c");
        for f in [
            format!("./usr/bin/{p}"),
            format!("{unitdir}{p}.service"),
            format!("{unitdir}{p}.timer"),
            format!("./usr/share/bash-completion/completions/{p}"),
        ] {
            assert!(list.contains(&f), "{p}.deb lacks {f}:\n{list}");
        }
        let ex = tempfile::tempdir().unwrap();
        sh_ok(
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(ex.path()),
            "dpkg-deb -x",
        );
        let unit = std::fs::read_to_string(
            ex.path()
                .join(unitdir.trim_start_matches("./"))
                .join(format!("{p}.service")),
        )
        .unwrap();
        assert!(
            unit.contains(&format!("ExecStart=/usr/bin/{p}")) && !unit.contains("/usr/local/bin"),
            "{unit}"
        );
        let field = |f: &str| {
            sh_ok(
                Command::new("dpkg-deb").arg("-f").arg(&deb).arg(f),
                "dpkg-deb -f",
            )
        };
        assert_eq!(field("Package").trim(), p);
        assert_eq!(field("Version").trim(), format!("{VERSION}-1"));
    }

    // Man pages and completions name the real flags.
    let man = std::fs::read_to_string(out.join("man/goldmane-edge-aggregator.1")).unwrap();
    assert!(
        man.starts_with(".ie \\n(.g .ds Aq") || man.contains(".TH"),
        "{man}"
    );
    assert!(man.contains("GOLDMANE_HOST"), "man page lacks env twins");
    let bash = std::fs::read_to_string(out.join("completions/bash/compat-gate")).unwrap();
    assert!(
        bash.contains("validate-matrix"),
        "bash completion lacks subcommands"
    );

    // SBOM: CycloneDX, the linked crates with Cargo.lock checksums, no dev-only crates.
    let bom: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join(format!("homelab-ops-{VERSION}.cdx.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["metadata"]["component"]["version"], VERSION);
    let comps = bom["components"].as_array().unwrap();
    let has = |n: &str| comps.iter().any(|c| c["name"] == n);
    for n in [
        "ring",
        "rustls",
        "tokio-postgres",
        "rusqlite",
        "vault-token-renew",
    ] {
        assert!(has(n), "SBOM lacks {n}");
    }
    for n in ["proptest", "tempfile", "testkit", "rcgen"] {
        assert!(!has(n), "SBOM lists dev-only {n}");
    }
    let ring = comps.iter().find(|c| c["name"] == "ring").unwrap();
    assert_eq!(ring["hashes"][0]["alg"], "SHA-256");
}

/// `scripts/install.sh` also installs (and `--uninstall` removes) the man pages and the
/// bash/zsh/fish completions of the host binaries, generated from their clap definitions.
#[test]
fn install_sh_puts_man_pages_and_completions_and_uninstall_removes_them() {
    let bins = crate::binaries();
    let dest = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let o = Command::new("bash")
            .arg(root().join("scripts/install.sh"))
            .args(["--prefix", "/opt/h", "--destdir"])
            .arg(dest.path())
            .args(extra)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["--from", crate::bin_dir().to_str().unwrap()]);
    let share = dest.path().join("opt/h/share");
    for b in &bins {
        for f in [
            format!("man/man1/{b}.1"),
            format!("bash-completion/completions/{b}"),
            format!("zsh/site-functions/_{b}"),
            format!("fish/vendor_completions.d/{b}.fish"),
        ] {
            let text = std::fs::read_to_string(share.join(&f))
                .unwrap_or_else(|_| panic!("{f} not installed"));
            assert!(text.contains(b.as_str()), "{f} does not name {b}");
        }
    }
    run(&["--uninstall"]);
    let left: Vec<PathBuf> = walk_files(&share);
    assert!(left.is_empty(), "left after uninstall: {left:?}");
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
