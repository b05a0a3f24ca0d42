//! `status [--json]` (§8.1): read-only, exactly one round trip (lookup-self). Never writes the
//! log, the token file, metrics or state; never shows the token or the lookup's `id`.

use crate::cli::Opts;
use crate::config::{Paths, VaultSettings};
use crate::decide::{self, Health, TokenInfo};
use crate::vault::{HttpVault, TokenApi};
use homelab_core::log::{format_is, local_offset_at};
use serde_json::{json, Value};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The log prefixes whose last occurrence `status` shows.
pub const KINDS: [(&str, &str); 4] = [
    ("ok", "OK renewed"),
    ("healed", "HEALED:"),
    ("drift", "DRIFT:"),
    ("fail", "FAIL:"),
];

/// Last line of each kind in a log text: `(kind, timestamp, text after the timestamp)`.
pub fn last_lines(log: &str) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for (kind, prefix) in KINDS {
        let hit = log.lines().rev().find_map(|l| {
            let (ts, text) = l.split_once(' ')?;
            text.starts_with(prefix)
                .then(|| (kind, ts.to_string(), text.to_string()))
        });
        out.extend(hit);
    }
    out
}

/// Seconds since an RFC 3339 timestamp, when it parses.
pub fn age_secs(ts: &str, now: i64) -> Option<i64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    Some(now - t.unix_timestamp())
}

/// The tail of the log (last 256 KiB) — enough for the last line of each kind.
fn read_log_tail(path: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(256 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(256 * 1024).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn fmt_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format_is(t.to_offset(local_offset_at(unix))))
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Run `status`; returns the exit code.
pub fn status(opts: &Opts) -> i32 {
    let now = now_unix();
    let mut doc = json!({
        "health": "ERROR", "reasons": [], "error": null, "user": null,
        "vault_addr": null, "token_file": null, "display_name": null,
        "expected_display_name": null, "policies": null, "identity_policies": null,
        "verdict": null, "ttl": null, "ttl_human": null, "period": null,
        "explicit_max_ttl": null, "renewable": null, "orphan": null,
        "expire_time": null, "type": null, "last": {},
    });
    let health = gather(opts, now, &mut doc);
    doc["health"] = json!(health.word());
    if opts.json {
        println!("{doc}");
    } else {
        print!("{}", render(&doc));
    }
    health.exit_code()
}

fn gather(opts: &Opts, now: i64, doc: &mut Value) -> Health {
    let error = |doc: &mut Value, text: String| {
        doc["error"] = json!(text);
        Health::Error
    };
    let paths = match Paths::resolve(opts) {
        Ok(p) => p,
        Err(e) => return error(doc, e.to_string()),
    };
    doc["user"] = json!(paths.user);
    let mut last = serde_json::Map::new();
    for (kind, ts, text) in last_lines(&read_log_tail(&paths.log_file)) {
        last.insert(
            kind.to_string(),
            json!({"time": ts, "age_seconds": age_secs(&ts, now), "line": text}),
        );
    }
    doc["last"] = Value::Object(last);
    if let Ok(vs) = VaultSettings::from_opts(opts) {
        doc["vault_addr"] = json!(vs.addr);
    }
    match std::fs::metadata(&paths.token_file) {
        Ok(m) => {
            doc["token_file"] = json!({
                "path": paths.token_file.display().to_string(),
                "mode": format!("{:04o}", m.permissions().mode() & 0o7777),
                "mtime": fmt_time(m.mtime()),
            });
        }
        Err(_) => {
            doc["token_file"] = json!({"path": paths.token_file.display().to_string(),
                "mode": null, "mtime": null});
        }
    }
    let p = match crate::prepare(opts, &paths) {
        Ok(p) => p,
        Err(text) => return error(doc, text),
    };
    doc["expected_display_name"] = json!(p.scope.expected_display_name);
    let api = match HttpVault::new(&p.vault) {
        Ok(a) => a,
        Err(e) => return error(doc, format!("config VAULT_CACERT: {e}")),
    };
    let v = match api.lookup_self(&p.token) {
        Ok(v) => v,
        Err(e) => return error(doc, format!("token lookup: {}", e.text)),
    };
    let info: TokenInfo = match decide::parse_lookup(&v) {
        Ok(i) => i,
        Err(w) => return error(doc, format!("token lookup: invalid JSON ({w})")),
    };
    let d = &v["data"];
    doc["display_name"] = json!(info.display_name);
    doc["policies"] = json!(strings(&d["policies"]));
    doc["identity_policies"] = json!(strings(&d["identity_policies"]));
    let ours = decide::is_ours(&p.scope, &info);
    doc["verdict"] = json!(if ours { "ours" } else { "foreign" });
    doc["ttl"] = json!(info.ttl);
    doc["ttl_human"] = json!(info.ttl.map(decide::human_secs));
    doc["period"] = json!(info.period);
    doc["explicit_max_ttl"] = json!(info.explicit_max_ttl);
    doc["renewable"] = json!(info.renewable);
    doc["orphan"] = json!(info.orphan);
    doc["expire_time"] = json!(info.expire_time);
    doc["type"] = json!(info.token_type);
    let (h, reasons) = decide::health(&p.scope, &info, p.vault.min_ttl);
    doc["reasons"] = json!(reasons);
    h
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".to_string(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// `<n>s (<human>)`, or `-` when the lookup had no such number.
fn secs(v: &Value, human: impl Fn(i64) -> String) -> String {
    match v.as_i64() {
        Some(n) => format!("{n}s ({})", human(n)),
        None => "-".to_string(),
    }
}

/// Human rendering of the status document.
pub fn render(doc: &Value) -> String {
    let mut out = format!("vault-token-renew status: {}\n", show(&doc["health"]));
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<22} {v}\n"));
    if !doc["error"].is_null() {
        row("error:", show(&doc["error"]));
    }
    for r in doc["reasons"].as_array().into_iter().flatten() {
        row("reason:", show(r));
    }
    row("user:", show(&doc["user"]));
    row("VAULT_ADDR:", show(&doc["vault_addr"]));
    let tf = &doc["token_file"];
    row(
        "token file:",
        format!(
            "{} (mode {}, modified {})",
            show(&tf["path"]),
            show(&tf["mode"]),
            show(&tf["mtime"])
        ),
    );
    row("display name:", show(&doc["display_name"]));
    row("expected name:", show(&doc["expected_display_name"]));
    row("token policies:", show(&doc["policies"]));
    row("identity policies:", show(&doc["identity_policies"]));
    row("verdict:", show(&doc["verdict"]));
    row("ttl:", secs(&doc["ttl"], decide::human_secs));
    row("period:", secs(&doc["period"], decide::human_secs));
    row(
        "explicit_max_ttl:",
        secs(&doc["explicit_max_ttl"], decide::human_secs),
    );
    row("renewable:", show(&doc["renewable"]));
    row("orphan:", show(&doc["orphan"]));
    row("expire_time:", show(&doc["expire_time"]));
    row("type:", show(&doc["type"]));
    for (kind, prefix) in KINDS {
        let l = &doc["last"][kind];
        let v = if l.is_null() {
            "never".to_string()
        } else {
            let age = l["age_seconds"].as_i64().map_or("?".to_string(), |a| {
                format!("{} ago", decide::human_secs(a))
            });
            format!("{} ({age}): {}", show(&l["time"]), show(&l["line"]))
        };
        row(&format!("last {}:", prefix.trim_end_matches(':')), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_of_each_kind() {
        let log = "2026-07-01T00:00:00+00:00 OK renewed (dn=a ttl=1s)\n\
2026-07-02T00:00:00+00:00 FAIL: token lookup: x\n\
2026-07-03T00:00:00+00:00 OK renewed (dn=a ttl=2s)\n";
        let l = last_lines(log);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].0, "ok");
        assert_eq!(l[0].1, "2026-07-03T00:00:00+00:00");
        assert_eq!(l[0].2, "OK renewed (dn=a ttl=2s)");
        assert_eq!(l[1].0, "fail");
        assert_eq!(
            age_secs("2026-07-03T00:00:00+00:00", 1_783_036_800 + 60),
            Some(60)
        );
    }
}
