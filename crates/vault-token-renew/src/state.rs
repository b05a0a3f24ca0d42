//! The small state file `<state>/vault-token-renew.state.json`: the last success time (for
//! metrics, §8.5) and the accessors of the periodic tokens this tool minted (issue 15 item 7:
//! they are revoked first, so a heal does not depend on a full accessor scan). Accessors are
//! not secrets (they cannot be used to authenticate), but the file stays 0600.

use serde_json::{json, Map, Value};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub last_success: Option<i64>,
    pub minted: Vec<String>,
}

/// An accessor as Vault makes them (base62 plus `.` for namespaced ones), bounded.
pub fn valid_accessor(a: &str) -> bool {
    !a.is_empty() && a.len() <= 128 && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

/// Parse the file; a garbage minted list is dropped with a warning (the bounded full scan
/// then covers it) — never an error that would stop the run.
pub fn parse(text: &[u8], path: &Path) -> (State, Option<String>) {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(text) else {
        return (
            State::default(),
            Some(format!(
                "WARNING: state file {} is not a JSON object; ignoring it (minted accessors unknown: the bounded accessor scan covers them)",
                path.display()
            )),
        );
    };
    let last_success = m.get("last_success").and_then(Value::as_i64);
    let mut warn = None;
    let minted = match m.get("minted_accessors") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a))
            if a.iter().all(|x| x.as_str().is_some_and(valid_accessor)) && a.len() <= 1000 =>
        {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        }
        Some(_) => {
            warn = Some(format!(
                "WARNING: state file {}: minted_accessors is not a list of accessors; ignoring it (the bounded accessor scan covers them)",
                path.display()
            ));
            Vec::new()
        }
    };
    (
        State {
            last_success,
            minted,
        },
        warn,
    )
}

pub fn load(path: &Path) -> (State, Option<String>) {
    match std::fs::read(path) {
        Ok(t) => parse(&t, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (State::default(), None),
        Err(e) => (
            State::default(),
            Some(format!(
                "WARNING: state file {}: {e}; ignoring it",
                path.display()
            )),
        ),
    }
}

pub fn render(s: &State) -> String {
    let mut m = Map::new();
    if let Some(t) = s.last_success {
        m.insert("last_success".into(), json!(t));
    }
    if !s.minted.is_empty() {
        m.insert("minted_accessors".into(), json!(s.minted));
    }
    Value::Object(m).to_string()
}

/// Atomic rewrite (0600); returns a warning on failure.
pub fn save(path: &Path, s: &State) -> Option<String> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    homelab_core::fsx::atomic_write(path, render(s).as_bytes())
        .err()
        .map(|e| format!("WARNING: state file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let p = Path::new("/s");
        let s = State {
            last_success: Some(5),
            minted: vec!["Abc123".into()],
        };
        assert_eq!(parse(render(&s).as_bytes(), p), (s, None));
        for bad in [
            r#"{"minted_accessors": "x"}"#,
            r#"{"minted_accessors": [1]}"#,
            r#"{"minted_accessors": ["a b"]}"#,
            r#"{"last_success": 7, "minted_accessors": [""]}"#,
        ] {
            let (st, w) = parse(bad.as_bytes(), p);
            assert!(st.minted.is_empty(), "{bad}");
            assert!(
                w.unwrap().contains("minted_accessors is not a list"),
                "{bad}"
            );
        }
        let (st, _) = parse(br#"{"last_success": 7, "minted_accessors": {}}"#, p);
        assert_eq!(st.last_success, Some(7));
        let (st, w) = parse(b"\x00garbage", p);
        assert_eq!(st, State::default());
        assert!(w.unwrap().contains("not a JSON object"));
    }
}
