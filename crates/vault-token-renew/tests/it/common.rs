//! Shared harness: run the real binary in a throwaway home against a real OpenBao dev server
//! or a scripted loopback server, and check the "no token in any output" invariant (§7.1) on
//! every run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use testkit::{HttpServer, OpenBao, Reply, Request};

pub const BIN: &str = env!("CARGO_BIN_EXE_vault-token-renew");

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The log file after the run ("" when absent).
    pub log: String,
}

impl Out {
    /// The log lines without their `<ts> ` prefix.
    pub fn log_texts(&self) -> Vec<String> {
        self.log
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, t)| t).to_string())
            .collect()
    }
    /// The single log line this run appended (texts after the timestamp).
    pub fn line(&self) -> String {
        let t = self.log_texts();
        assert_eq!(t.len(), 1, "expected exactly one log line: {self:#?}");
        t[0].clone()
    }
    /// The last log line (text after the timestamp).
    pub fn last(&self) -> String {
        self.log_texts().pop().unwrap_or_default()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"))
    }
}

/// A throwaway user environment: home (with `.vault-token`), state dir, optional config.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub user: String,
    /// Extra environment for the child.
    pub env: Vec<(String, String)>,
    /// Pass `--vault-addr` (false: the address comes from the environment only).
    pub addr_flag: bool,
    secrets: Mutex<Vec<String>>,
}

impl Env {
    pub fn new(addr: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Env {
            dir,
            addr: addr.to_string(),
            user: "wizard".to_string(),
            env: Vec::new(),
            addr_flag: true,
            secrets: Mutex::new(Vec::new()),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn token_file(&self) -> PathBuf {
        self.home().join(".vault-token")
    }
    pub fn log_file(&self) -> PathBuf {
        self.state().join("vault-token-renew.log")
    }
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("vtr.json")
    }
    pub fn metrics_file(&self) -> PathBuf {
        self.dir.path().join("vtr.prom")
    }

    /// Remember a string that must never appear in any output.
    pub fn secret(&self, s: &str) {
        self.secrets.lock().unwrap().push(s.to_string());
    }

    /// Write the token file the way the CLI does (trailing newline, 0600).
    pub fn write_token(&self, token: &str) {
        self.secret(token);
        self.write_raw(format!("{token}\n").as_bytes());
    }

    pub fn write_raw(&self, bytes: &[u8]) {
        let p = self.token_file();
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn read_token_bytes(&self) -> Vec<u8> {
        std::fs::read(self.token_file()).unwrap()
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_file(), text).unwrap();
        std::fs::set_permissions(self.config_file(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }

    pub fn setenv(&mut self, k: &str, v: &str) {
        self.env.push((k.to_string(), v.to_string()));
    }

    /// Run the binary with the env's paths and `args`; assert the no-token invariant.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_via(&[], args)
    }

    /// As [`Env::run`], with the binary started through `wrapper` (e.g. `unshare`), which
    /// must end by exec'ing its remaining arguments.
    pub fn run_via(&self, wrapper: &[&str], args: &[&str]) -> Out {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(["--home"])
            .arg(self.home())
            .arg("--state-home")
            .arg(self.state())
            .arg("--config")
            .arg(self.config_file())
            .args(["--user", &self.user])
            .args(args);
        if self.addr_flag {
            cmd.args(["--vault-addr", &self.addr]);
        }
        for v in [
            "VAULT_ADDR",
            "VAULT_TOKEN",
            "BAO_TOKEN",
            "BAO_ADDR",
            "VAULT_CACERT",
            "VAULT_NAMESPACE",
            "VAULT_CAPATH",
            "VAULT_CLIENT_CERT",
            "VAULT_CLIENT_KEY",
            "VAULT_TLS_SERVER_NAME",
            "VAULT_SKIP_VERIFY",
            "BAO_CACERT",
            "BAO_CAPATH",
            "BAO_CLIENT_CERT",
            "BAO_CLIENT_KEY",
            "BAO_TLS_SERVER_NAME",
            "BAO_SKIP_VERIFY",
            "BAO_NAMESPACE",
            "VTR_CONFIG",
            "VTR_USER",
            "VTR_JSON",
            "VTR_DRY_RUN",
            "VTR_METRICS_TEXTFILE",
            "VTR_PUSHGATEWAY_URL",
            "VTR_HTTP_TIMEOUT",
            "XDG_STATE_HOME",
        ] {
            cmd.env_remove(v);
        }
        cmd.env("HOME", self.home()).env("TZ", "UTC");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let o = cmd.output().expect("run vault-token-renew");
        let out = Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            log: std::fs::read_to_string(self.log_file()).unwrap_or_default(),
        };
        self.assert_no_secret(&out);
        out
    }

    /// §7.1 / §10.2.11: no token string (known, or anything shaped like an OpenBao token) in
    /// stdout, stderr, the log, or the metrics/state files.
    pub fn assert_no_secret(&self, out: &Out) {
        let mut channels = vec![
            ("stdout", out.stdout.clone()),
            ("stderr", out.stderr.clone()),
            ("log", out.log.clone()),
        ];
        for (name, p) in [
            ("metrics", self.metrics_file()),
            ("state", self.state().join("vault-token-renew.state.json")),
        ] {
            if let Ok(t) = std::fs::read_to_string(p) {
                channels.push((name, t));
            }
        }
        let secrets = self.secrets.lock().unwrap().clone();
        for (name, text) in &channels {
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "token leaked on {name}: {text}");
            }
            assert!(
                !looks_like_token(text),
                "something shaped like a token on {name}: {text}"
            );
        }
    }
}

/// `s.` / `hvs.` followed by 24+ base62 characters, not preceded by an alphanumeric.
pub fn looks_like_token(text: &str) -> bool {
    let b = text.as_bytes();
    for (i, _) in text.match_indices("s.") {
        let pre_ok = i == 0 || !b[i - 1].is_ascii_alphanumeric() || text[..i].ends_with("hv");
        let run = b[i + 2..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if pre_ok && run >= 24 {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------- real OpenBao

/// A dev server with the policies of the scenarios:
/// `vault-admin` (everything, with sudo), `sops-admin`, `personal-emo`, `projects-emo`, `ci`
/// (read-only, the woodpecker stand-in) and `creator` (create without sudo).
pub fn openbao() -> OpenBao {
    let bao = OpenBao::start();
    bao.put_policy(
        "vault-admin",
        r#"path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }"#,
    );
    for p in ["sops-admin", "projects-emo", "personal-emo"] {
        bao.put_policy(p, r#"path "secret/*" { capabilities = ["read"] }"#);
    }
    bao.put_policy("ci", r#"path "secret/ci/*" { capabilities = ["read"] }"#);
    bao.put_policy(
        "creator",
        r#"path "auth/token/create" { capabilities = ["create", "update"] }"#,
    );
    bao
}

/// A token created by root (child of root, so revoking other tokens never kills it).
pub fn token(bao: &OpenBao, params: serde_json::Value) -> (String, String) {
    bao.create_token(&params, false)
}

/// wizard's periodic orphan token, as the heal (or the runbook) mints it.
pub fn periodic_wizard(bao: &OpenBao) -> (String, String) {
    token(
        bao,
        serde_json::json!({
            "policies": ["vault-admin", "sops-admin"], "no_parent": true, "period": "768h",
            "display_name": "devvm-wizard", "renewable": true
        }),
    )
}

/// Lookup status of a token (200 alive, 403 revoked/unknown).
pub fn alive(bao: &OpenBao, t: &str) -> bool {
    bao.lookup(t).0 == 200
}

/// Display names of every live token (root's view).
pub fn live_display_names(bao: &OpenBao) -> Vec<String> {
    let keys = bao.root_api("LIST", "/v1/auth/token/accessors", None);
    keys["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let v = bao.root_api(
                "POST",
                "/v1/auth/token/lookup-accessor",
                Some(&serde_json::json!({ "accessor": k })),
            );
            v["data"]["display_name"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A recording pass-through in front of OpenBao, to count and order the binary's requests.
pub struct Proxy {
    pub srv: HttpServer,
}

impl Proxy {
    pub fn new(bao: &OpenBao) -> Proxy {
        let upstream = bao.addr();
        let srv = HttpServer::start(move |r: &Request| {
            let mut headers: Vec<(&str, &str)> = Vec::new();
            for h in [
                "X-Vault-Token",
                "X-Vault-Request",
                "Content-Type",
                "X-Vault-Namespace",
            ] {
                if let Some(v) = r.header(h) {
                    headers.push((h, v));
                }
            }
            let body = (!r.body.is_empty()).then_some(r.body.as_slice());
            match testkit::proc::http_request(
                &r.method,
                &format!("{upstream}{}", r.target),
                &headers,
                body,
            ) {
                Some((st, text)) => Reply::new(st)
                    .header("Content-Type", "application/json")
                    .body(text.into_bytes()),
                None => Reply::drop_connection(),
            }
        });
        Proxy { srv }
    }
    pub fn url(&self) -> String {
        self.srv.url()
    }
    /// `METHOD path` of every request so far.
    pub fn calls(&self) -> Vec<String> {
        calls(&self.srv)
    }
}

pub fn calls(srv: &HttpServer) -> Vec<String> {
    srv.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect()
}

// ---------------------------------------------------------------- scripted server

/// Lookup answer for a scripted server.
pub fn lookup_json(dn: &str, policies: &[&str], accessor: &str) -> serde_json::Value {
    serde_json::json!({"data": {
        "display_name": dn, "policies": policies, "identity_policies": null,
        "accessor": accessor, "ttl": 2_764_000, "period": 2_764_800, "explicit_max_ttl": 0,
        "renewable": true, "orphan": true, "expire_time": "2026-12-01T00:00:00Z",
        "type": "service", "id": "MUST-NOT-SHOW"
    }})
}

pub fn ours() -> serde_json::Value {
    lookup_json(
        "token-devvm-wizard",
        &["default", "sops-admin", "vault-admin"],
        "acc-new",
    )
}

pub fn renew_ok() -> serde_json::Value {
    serde_json::json!({"auth": {"lease_duration": 2_764_800, "renewable": true}})
}

/// A scripted Vault: `handler(request, token)` where token = the X-Vault-Token header.
pub fn scripted(handler: impl Fn(&Request, &str) -> Reply + Send + Sync + 'static) -> HttpServer {
    HttpServer::start(move |r| {
        let t = r.header("X-Vault-Token").unwrap_or("").to_string();
        handler(r, &t)
    })
}

pub fn shared<T>(v: T) -> Arc<Mutex<T>> {
    Arc::new(Mutex::new(v))
}

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A fake OpenBao-shaped token (`s.` + 24 base62 characters).
pub fn fake_token(tag: char) -> String {
    format!("s.{}", std::iter::repeat_n(tag, 24).collect::<String>())
}
