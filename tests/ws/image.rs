//! The image for real (issue 16): the archive `scripts/image.sh` wrote is unpacked with umoci
//! and run with runc as uid 65532 on a read-only root filesystem. `scripts/test.sh` builds the
//! image before `cargo test`; run alone, build it first with `bash scripts/image.sh`.

use crate::root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::goldmane::{flow, FakeGoldmane, GoldmanePki};
use testkit::{require_bin, Postgres};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const TOOLS: [&str; 6] = [
    "vault-token-renew",
    "t3-migrate-idle",
    "goldmane-edge-aggregator",
    "edges-digest",
    "compat-gate",
    "nightly-report",
];

pub fn archive() -> PathBuf {
    let p = root().join("target/image/homelab-ops.oci.tar");
    assert!(
        p.is_file(),
        "{} missing: build the image with `bash scripts/image.sh` (scripts/test.sh runs it before cargo test)",
        p.display()
    );
    p
}

fn sh(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The archive unpacked: the OCI layout and a runtime bundle (umoci unpack).
pub struct Unpacked {
    pub dir: tempfile::TempDir,
}

impl Unpacked {
    pub fn new() -> Unpacked {
        let umoci = require_bin("umoci", &[], "apt-get install -y umoci (scripts/setup.sh)");
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        std::fs::create_dir(&layout).unwrap();
        sh(
            Command::new("tar")
                .arg("-xf")
                .arg(archive())
                .arg("-C")
                .arg(&layout),
            "tar -xf homelab-ops.oci.tar",
        );
        sh(
            Command::new(umoci)
                .arg("unpack")
                .arg("--image")
                .arg(format!("{}:{VERSION}", layout.display()))
                .arg(dir.path().join("bundle")),
            "umoci unpack",
        );
        Unpacked { dir }
    }
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }
    fn blob(&self, digest: &str) -> Value {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        serde_json::from_slice(
            &std::fs::read(self.layout().join("blobs/sha256").join(hex)).unwrap(),
        )
        .unwrap()
    }
    /// (manifest digest, manifest, image config) of the one image in the archive.
    pub fn image(&self) -> (String, Value, Value) {
        let index: Value =
            serde_json::from_slice(&std::fs::read(self.layout().join("index.json")).unwrap())
                .unwrap();
        let m = &index["manifests"].as_array().expect("manifests")[..];
        assert_eq!(m.len(), 1, "one image in the archive: {index}");
        assert_eq!(
            m[0]["annotations"]["org.opencontainers.image.ref.name"],
            VERSION
        );
        let digest = m[0]["digest"].as_str().unwrap().to_string();
        let manifest = self.blob(&digest);
        let config = self.blob(manifest["config"]["digest"].as_str().unwrap());
        (digest, manifest, config)
    }

    /// Run `args` in the container: runc, uid 65532, read-only root, host network (the suite's
    /// servers listen on loopback), `binds` mounted read-only. Returns (exit code, stdout, stderr).
    pub fn run(
        &self,
        args: &[&str],
        env: &[(&str, String)],
        binds: &[(&Path, &str)],
    ) -> (i32, String, String) {
        let runc = require_bin("runc", &[], "apt-get install -y runc (scripts/setup.sh)");
        let path = self.bundle().join("config.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        // What the image itself says: uid/gid 65532 (umoci takes it from the image config).
        assert_eq!(cfg["process"]["user"]["uid"], 65532, "{}", cfg["process"]);
        assert_eq!(cfg["process"]["user"]["gid"], 65532, "{}", cfg["process"]);
        cfg["root"]["readonly"] = Value::Bool(true);
        cfg["process"]["terminal"] = Value::Bool(false);
        cfg["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        let mut e: Vec<Value> = vec!["PATH=/usr/local/bin".into()];
        e.extend(env.iter().map(|(k, v)| Value::from(format!("{k}={v}"))));
        cfg["process"]["env"] = Value::Array(e);
        if let Some(ns) = cfg["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
        let mounts = cfg["mounts"].as_array_mut().unwrap();
        for (src, dst) in binds {
            mounts.push(serde_json::json!({
                "destination": dst, "type": "bind", "source": src,
                "options": ["rbind", "ro", "nosuid", "nodev"]
            }));
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        let state = self.dir.path().join("runc-state");
        let id = format!(
            "hlo-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut child = Command::new(&runc)
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(self.bundle())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runc");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = Command::new(&runc)
                    .arg("--root")
                    .arg(&state)
                    .args(["kill", &id, "KILL"])
                    .status();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let _ = Command::new(&runc)
            .arg("--root")
            .arg(&state)
            .args(["delete", "--force", &id])
            .output();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// ELF file with no PT_INTERP program header: statically linked (static-pie or static).
fn is_static_elf(bytes: &[u8]) -> bool {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) != 3
    })
}

/// The image's shape: scratch (only our files), user 65532, no ENTRYPOINT/CMD, the CA bundle
/// where the binaries look, one static binary hard-linked under the six names, ≤ 16 MiB.
#[test]
fn image_is_scratch_nonroot_static_and_under_16_mib() {
    let u = Unpacked::new();
    let (_, manifest, config) = u.image();
    assert_eq!(config["config"]["User"], "65532:65532");
    assert!(config["config"]["Entrypoint"].is_null(), "{config}");
    assert!(config["config"]["Cmd"].is_null(), "{config}");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.version"],
        VERSION
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    let rootfs = u.rootfs();
    let mut files = BTreeMap::new();
    let mut size = 0u64;
    let mut inodes = std::collections::BTreeSet::new();
    for e in walk(&rootfs) {
        let rel = e.strip_prefix(&rootfs).unwrap().display().to_string();
        let md = std::fs::symlink_metadata(&e).unwrap();
        if md.is_file() && inodes.insert(md.ino()) {
            size += md.len();
        }
        files.insert(rel, md);
    }
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    let mut want = vec![
        "etc",
        "etc/group",
        "etc/passwd",
        "etc/ssl",
        "etc/ssl/certs",
        "etc/ssl/certs/ca-certificates.crt",
        "tmp",
        "usr",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/homelab-ops",
    ];
    let bins: Vec<String> = TOOLS.iter().map(|t| format!("usr/local/bin/{t}")).collect();
    want.extend(bins.iter().map(String::as_str));
    want.sort();
    assert_eq!(
        names, want,
        "scratch image holds exactly these paths (no shell)"
    );
    let ino = files["usr/local/bin/homelab-ops"].ino();
    for b in &bins {
        assert_eq!(files[b].ino(), ino, "{b} is a hard link of homelab-ops");
        assert_eq!(files[b].mode() & 0o777, 0o755, "{b}");
    }
    let bin = std::fs::read(rootfs.join("usr/local/bin/homelab-ops")).unwrap();
    assert!(
        is_static_elf(&bin),
        "homelab-ops has an ELF interpreter: not static"
    );
    assert_eq!(
        std::fs::read(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap(),
        "Debian's CA bundle"
    );
    assert!(
        std::fs::read_to_string(rootfs.join("etc/passwd"))
            .unwrap()
            .contains(":65532:65532:"),
        "passwd names uid 65532"
    );
    assert!(
        size <= 16 * 1024 * 1024,
        "image is {size} bytes uncompressed, over 16 MiB"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

/// `--version` of every tool from the image, as a workload runs it
/// (`command: ["/usr/local/bin/<tool>", ...]`): version and the commit the image was built at.
#[test]
fn every_tool_prints_version_and_commit_under_runc() {
    let u = Unpacked::new();
    let (_, _, config) = u.image();
    let commit = config["config"]["Labels"]["org.opencontainers.image.revision"]
        .as_str()
        .expect("revision label")
        .to_string();
    let hex = commit.strip_suffix("-dirty").unwrap_or(&commit);
    assert!(
        hex.len() >= 7 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "image built outside git? revision {commit}"
    );
    for t in TOOLS {
        let (code, out, err) = u.run(&[&format!("/usr/local/bin/{t}"), "--version"], &[], &[]);
        assert_eq!(code, 0, "{t} --version: {out}{err}");
        assert_eq!(out, format!("{t} {VERSION} (commit {commit})\n"), "{t}");
    }
    let (code, out, err) = u.run(
        &["/usr/local/bin/homelab-ops", "edges-digest", "--version"],
        &[],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("edges-digest {VERSION} (commit {commit})\n"));
}

/// The aggregator's `check` from the image against the suite's Postgres and the Goldmane
/// stand-in (mTLS with the client cert mounted read-only, as a Secret volume would be).
#[test]
fn aggregator_check_from_the_image_against_postgres_and_goldmane() {
    let u = Unpacked::new();
    let pg = Postgres::start();
    pg.create_db("goldmane_edges");
    let pki = GoldmanePki::generate();
    let fake = FakeGoldmane::start(&pki);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    fake.add_flows([flow(1, "shop", "payments", 1, now - 60)]);
    let certs = tempfile::tempdir().unwrap();
    pki.client.write(certs.path(), "client");
    std::fs::write(certs.path().join("ca.crt"), &pki.ca.cert_pem).unwrap();
    // The container runs as 65532: the mounted Secret files are its own, as kubelet's
    // fsGroup would make them.
    for p in std::iter::once(certs.path().to_path_buf()).chain(walk(certs.path())) {
        std::os::unix::fs::chown(&p, Some(65532), Some(65532)).unwrap();
    }
    let env = [
        ("GOLDMANE_HOST", fake.addr()),
        ("GOLDMANE_SERVER_NAME", "localhost".to_string()),
        ("GOLDMANE_CLIENT_CERT", "/certs/client.crt".to_string()),
        ("GOLDMANE_CLIENT_KEY", "/certs/client.key".to_string()),
        ("GOLDMANE_CA", "/certs/ca.crt".to_string()),
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/goldmane_edges", pg.port()),
        ),
    ];
    let (code, out, err) = u.run(
        &["/usr/local/bin/goldmane-edge-aggregator", "check"],
        &env,
        &[(certs.path(), "/certs")],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("db: ok postgres"), "{out}");
    assert!(
        out.contains("goldmane: ok 127.0.0.1:") && out.contains("shop -> payments"),
        "{out}"
    );
    assert!(out.contains("check ok"), "{out}");
}
