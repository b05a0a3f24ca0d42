//! Shared fixtures: the live-regression clusters (tests/fixtures/*.json) served by the test
//! kit's FakeKube over loopback HTTPS, and a runner for the real binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testkit::kube::{cluster_from_scenario, FakeCluster, FakeKube, TEST_TOKEN};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn scenario(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

pub fn cluster(doc: &Value) -> FakeCluster {
    cluster_from_scenario(doc).unwrap()
}

/// Set the image (and version label) of a fixture workload.
pub fn set_workload(doc: &mut Value, name: &str, image: &str) {
    for w in doc["workloads"].as_array_mut().unwrap() {
        if w["name"] == name {
            w["image"] = image.into();
            if let Some(tag) = image.rsplit(':').next() {
                if w["labels"].is_object() {
                    w["labels"]["app.kubernetes.io/version"] = tag.into();
                }
            }
        }
    }
}

/// The outcome of one binary run.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A test environment: a running FakeKube, its kubeconfig and a matrix.
pub struct Env {
    pub fk: FakeKube,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub matrix: PathBuf,
}

impl Env {
    pub fn new(cluster: FakeCluster) -> Env {
        Self::with_fk(FakeKube::start(cluster))
    }
    pub fn with_fk(fk: FakeKube) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = fk.write_kubeconfig(&dir.path().join("kubeconfig"));
        let matrix = dir.path().join("addon-compat.json");
        std::fs::copy(fixture("addon-compat.json"), &matrix).unwrap();
        Env {
            fk,
            dir,
            kubeconfig,
            matrix,
        }
    }
    pub fn scenario(name: &str) -> Env {
        Env::new(cluster(&scenario(name)))
    }
    pub fn set_matrix(&self, text: &str) {
        std::fs::write(&self.matrix, text).unwrap();
    }
    /// Run the binary with `KUBECONFIG` and `COMPAT_MATRIX` set (plus `env`).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut all: Vec<(String, String)> = vec![
            ("KUBECONFIG".into(), self.kubeconfig.display().to_string()),
            ("COMPAT_MATRIX".into(), self.matrix.display().to_string()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let o = run_bin(args, &all);
        assert_no_secrets(&o, &self.fk);
        o
    }
}

/// Run the binary with a clean environment.
pub fn run_bin(args: &[&str], env: &[(String, String)]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_compat-gate"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent-home")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run compat-gate");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// §12.3.8: neither the token nor the client key appear anywhere.
pub fn assert_no_secrets(o: &Out, fk: &FakeKube) {
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(!all.contains(TEST_TOKEN), "token leaked:\n{all}");
    assert!(
        !all.contains("fake-kube-sig"),
        "token fragment leaked:\n{all}"
    );
    let key_body: String = fk
        .pki
        .client_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!all.contains(&key_body[..40]), "client key leaked");
}

/// Remove the run-dependent fields (time, durations) from a JSON report.
pub fn stable_json(mut v: Value) -> Value {
    v["generated_at"] = Value::Null;
    if let Some(cs) = v["checks"].as_array_mut() {
        for c in cs {
            c["duration_ms"] = Value::Null;
        }
    }
    v
}
