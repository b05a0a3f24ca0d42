//! Pure scanners of the removed-API sources (§3.4): Helm release decoding and manifest
//! documents, `last-applied-configuration` annotations, and apiserver metrics lines.

use base64::Engine;
use serde_json::Value;
use std::io::Read;

/// A decoded Helm release: what the scan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    pub chart: String,
    /// `apiVersion`/`kind` of every document of `manifest` and each hook's manifest.
    pub documents: Vec<(String, String)>,
}

impl HelmRelease {
    /// `<ns>/<release> (chart <name>-<version>)`.
    pub fn subject(&self) -> String {
        format!("{}/{} (chart {})", self.namespace, self.name, self.chart)
    }
}

/// Upper bound of a decompressed release (a chart far beyond Helm's own 1 MiB Secret limit).
const MAX_RELEASE: u64 = 64 * 1024 * 1024;

/// Decode `data.release` of a Helm Secret: base64 (Secret) → base64 (Helm) → gunzip when it
/// starts `1f 8b` → JSON.
pub fn decode_release(secret: &Value) -> Result<HelmRelease, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = secret["data"]["release"]
        .as_str()
        .ok_or("no data.release")?;
    let helm = b64
        .decode(data.trim())
        .map_err(|e| format!("data.release is not base64: {e}"))?;
    decode_payload(secret, helm)
}

/// Decode `data.release` of a Helm ConfigMap (helm/helm v3.21.4 pkg/storage/driver/cfgmaps.go:
/// `Data: {"release": encodeRelease(rls)}`): one base64 layer fewer than a Secret.
pub fn decode_release_configmap(cm: &Value) -> Result<HelmRelease, String> {
    let data = cm["data"]["release"].as_str().ok_or("no data.release")?;
    decode_payload(cm, data.as_bytes().to_vec())
}

/// Helm's own encoding (base64 → gunzip when `1f 8b` → JSON), `obj` for fallbacks.
fn decode_payload(secret: &Value, helm: Vec<u8>) -> Result<HelmRelease, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let helm: Vec<u8> = helm
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = b64
        .decode(&helm)
        .map_err(|e| format!("release payload is not base64: {e}"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_RELEASE)
            .read_to_end(&mut out)
            .map_err(|e| format!("gunzip: {e}"))?;
        out
    } else {
        raw
    };
    let rel: Value = serde_json::from_slice(&json).map_err(|e| format!("release JSON: {e}"))?;
    let name = rel["name"]
        .as_str()
        .or_else(|| secret["metadata"]["labels"]["name"].as_str())
        .ok_or("release has no name")?
        .to_string();
    let namespace = rel["namespace"]
        .as_str()
        .or_else(|| secret["metadata"]["namespace"].as_str())
        .unwrap_or("")
        .to_string();
    let chart = format!(
        "{}-{}",
        rel["chart"]["metadata"]["name"].as_str().unwrap_or("?"),
        rel["chart"]["metadata"]["version"].as_str().unwrap_or("?")
    );
    let mut documents = Vec::new();
    if let Some(m) = rel["manifest"].as_str() {
        documents.extend(manifest_documents(m));
    } else if !rel["manifest"].is_null() {
        return Err("manifest is not a string".into());
    }
    if let Some(hooks) = rel["hooks"].as_array() {
        for h in hooks {
            if let Some(m) = h["manifest"].as_str() {
                documents.extend(manifest_documents(m));
            }
        }
    }
    Ok(HelmRelease {
        name,
        namespace,
        chart,
        documents,
    })
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    let v = match v.find(" #") {
        Some(i) => v[..i].trim_end(),
        None => v,
    };
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// `(apiVersion, kind)` of each YAML document: documents split on `---` lines, unindented
/// `apiVersion:` / `kind:` keys, quotes stripped. Documents lacking either are skipped.
pub fn manifest_documents(manifest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut api: Option<String> = None;
    let mut kind: Option<String> = None;
    let mut flush = |api: &mut Option<String>, kind: &mut Option<String>| {
        if let (Some(a), Some(k)) = (api.take(), kind.take()) {
            out.push((a, k));
        }
        *api = None;
        *kind = None;
    };
    for line in manifest.lines() {
        let l = line.trim_end_matches('\r');
        if l == "---" || l.starts_with("--- ") || l.starts_with("---\t") {
            flush(&mut api, &mut kind);
            continue;
        }
        if let Some(v) = l.strip_prefix("apiVersion:") {
            api = Some(unquote(v).to_string());
        } else if let Some(v) = l.strip_prefix("kind:") {
            kind = Some(unquote(v).to_string());
        }
    }
    flush(&mut api, &mut kind);
    out
}

/// `(apiVersion, kind)` of a `kubectl.kubernetes.io/last-applied-configuration` value.
pub fn last_applied(annotation: &str) -> Result<(String, String), String> {
    let v: Value = serde_json::from_str(annotation).map_err(|e| format!("not JSON: {e}"))?;
    let a = v["apiVersion"].as_str().ok_or("no apiVersion")?;
    let k = v["kind"].as_str().ok_or("no kind")?;
    Ok((a.to_string(), k.to_string()))
}

/// One `apiserver_requested_deprecated_apis` series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeprecatedSeries {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub removed_release: String,
}

/// Parse a metrics line of `apiserver_requested_deprecated_apis`; `None` for other lines.
/// `Err` for a line of that metric that cannot be read.
pub fn deprecated_series(line: &str) -> Option<Result<DeprecatedSeries, String>> {
    const NAME: &str = "apiserver_requested_deprecated_apis";
    let rest = line.strip_prefix(NAME)?;
    if !(rest.starts_with('{') || rest.starts_with(' ')) {
        return None;
    }
    Some(parse_series(rest).map(|labels| {
        let get = |k: &str| {
            labels
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        DeprecatedSeries {
            group: get("group"),
            version: get("version"),
            resource: get("resource"),
            subresource: get("subresource"),
            removed_release: get("removed_release"),
        }
    }))
}

fn parse_series(rest: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels = Vec::new();
    let Some(body) = rest.strip_prefix('{') else {
        return Ok(labels);
    };
    let mut chars = body.char_indices().peekable();
    loop {
        // label name
        let mut name = String::new();
        for (_, c) in chars.by_ref() {
            match c {
                '=' => break,
                '}' if name.trim().is_empty() => return Ok(labels),
                ',' if name.trim().is_empty() => continue,
                c => name.push(c),
            }
        }
        let name = name.trim().trim_start_matches(',').trim().to_string();
        if name.is_empty() {
            return Err("unterminated label set".into());
        }
        match chars.next() {
            Some((_, '"')) => {}
            _ => return Err(format!("label {name}: value not quoted")),
        }
        let mut val = String::new();
        let mut closed = false;
        while let Some((_, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, c2)) => val.push(c2),
                    None => break,
                },
                '"' => {
                    closed = true;
                    break;
                }
                c => val.push(c),
            }
        }
        if !closed {
            return Err(format!("label {name}: unterminated value"));
        }
        labels.push((name, val));
        match chars.next() {
            Some((_, ',')) => {
                if let Some((_, '}')) = chars.peek() {
                    return Ok(labels);
                }
            }
            Some((_, '}')) => return Ok(labels),
            _ => return Err("malformed label set".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn secret(payload: &[u8]) -> Value {
        let b = base64::engine::general_purpose::STANDARD;
        json!({"metadata": {"namespace": "ingress", "name": "sh.helm.release.v1.web.v3", "labels": {"name": "web"}},
               "data": {"release": b.encode(b.encode(payload))}})
    }

    const MANIFEST: &str = "---\n# Source: web/templates/ing.yaml\napiVersion: \"networking.k8s.io/v1beta1\"\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    kind: not-this\nspec:\n  x:\n    apiVersion: nested/v1\n---\n# Source: web/templates/deploy.yaml\napiVersion: apps/v1\nkind: 'Deployment'\n---\n---\n# empty doc\n";

    #[test]
    fn helm_decode_gzip_plain_hooks() {
        let rel = json!({"name": "web", "namespace": "ingress", "chart": {"metadata": {"name": "web", "version": "1.2.3"}},
                         "manifest": MANIFEST,
                         "hooks": [{"manifest": "apiVersion: batch/v1beta1\nkind: CronJob\n"}]});
        let raw = serde_json::to_vec(&rel).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        for payload in [gz, raw] {
            let r = decode_release(&secret(&payload)).unwrap();
            assert_eq!(r.subject(), "ingress/web (chart web-1.2.3)");
            assert_eq!(
                r.documents,
                vec![
                    (
                        "networking.k8s.io/v1beta1".to_string(),
                        "Ingress".to_string()
                    ),
                    ("apps/v1".into(), "Deployment".into()),
                    ("batch/v1beta1".into(), "CronJob".into()),
                ]
            );
        }
        let e = decode_release(&secret(b"\x1f\x8b\x08garbage")).unwrap_err();
        assert!(e.starts_with("gunzip"), "{e}");
        let e = decode_release(&secret(b"{not json")).unwrap_err();
        assert!(e.starts_with("release JSON"), "{e}");
        let e = decode_release(&json!({"data": {"release": "@@@"}})).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        assert!(decode_release(&json!({"data": {}})).is_err());
    }

    #[test]
    fn last_applied_parse() {
        let a = r#"{"apiVersion":"extensions/v1beta1","kind":"Ingress","metadata":{"name":"x"}}"#;
        assert_eq!(
            last_applied(a).unwrap(),
            ("extensions/v1beta1".into(), "Ingress".into())
        );
        assert!(last_applied("{garbage").is_err());
        assert!(last_applied("{\"kind\":\"X\"}").is_err());
    }

    #[test]
    fn metrics_lines() {
        let l = r#"apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",resource="flowschemas",subresource="",version="v1beta3"} 1"#;
        let s = deprecated_series(l).unwrap().unwrap();
        assert_eq!(s.group, "flowcontrol.apiserver.k8s.io");
        assert_eq!(s.removed_release, "1.32");
        assert_eq!(s.resource, "flowschemas");
        let l2 = r#"apiserver_requested_deprecated_apis{group="x\"y\\z",removed_release="1.36",resource="a,b}",subresource="status",version="v1"} 1"#;
        let s2 = deprecated_series(l2).unwrap().unwrap();
        assert_eq!(s2.group, "x\"y\\z");
        assert_eq!(s2.resource, "a,b}");
        assert_eq!(s2.subresource, "status");
        assert!(deprecated_series("# HELP apiserver_requested_deprecated_apis x").is_none());
        assert!(deprecated_series("apiserver_requested_deprecated_apis_total 1").is_none());
        assert!(deprecated_series("apiserver_request_total{} 1").is_none());
        assert!(
            deprecated_series("apiserver_requested_deprecated_apis{group=\"x} 1")
                .unwrap()
                .is_err()
        );
        let s3 =
            deprecated_series("apiserver_requested_deprecated_apis{group=\"\",version=\"v1\",} 1")
                .unwrap()
                .unwrap();
        assert_eq!(s3.version, "v1");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Exposition-format label value escaping.
    fn esc(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary metrics lines never panic.
        #[test]
        fn series_never_panics(
            s in "\\PC{0,80}",
            body in "[{}a-z_=\",\\\\ \\n]{0,40}",
        ) {
            let _ = deprecated_series(&s);
            let _ = parse_series(&s);
            let _ = deprecated_series(&format!("apiserver_requested_deprecated_apis{{{body}"));
            let _ = deprecated_series(&format!("apiserver_requested_deprecated_apis{body}"));
            let _ = manifest_documents(&s);
            let _ = last_applied(&s);
        }

        /// Rendered label sets (any value, escaped) parse back to the same labels, with or
        /// without a trailing comma; a line of another metric is `None`.
        #[test]
        fn series_round_trip(
            labels in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,12}", "\\PC{0,16}|[\\\\\"\\n{},=]{0,6}"), 0..6),
            trailing in any::<bool>(),
            value in "[0-9]{1,6}",
        ) {
            let body = labels.iter().map(|(n, v)| format!("{n}=\"{}\"", esc(v))).collect::<Vec<_>>().join(",");
            let comma = if trailing && !labels.is_empty() { "," } else { "" };
            let line = format!("apiserver_requested_deprecated_apis{{{body}{comma}}} {value}");
            prop_assert_eq!(parse_series(&line["apiserver_requested_deprecated_apis".len()..]).unwrap(), labels.clone());
            let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let s = deprecated_series(&line).unwrap().unwrap();
            prop_assert_eq!(s.group, get("group"));
            prop_assert_eq!(s.removed_release, get("removed_release"));
            let other = format!("apiserver_requested_deprecated_apis_total{{{body}}} 1");
            prop_assert!(deprecated_series(&other).is_none());
        }

        /// A value left unterminated is an error naming the label.
        #[test]
        fn unterminated_value_refused(name in "[a-z_]{1,10}", v in "[a-z0-9 .]{0,10}") {
            let r = deprecated_series(&format!("apiserver_requested_deprecated_apis{{{name}=\"{v}")).unwrap();
            prop_assert_eq!(r.unwrap_err(), format!("label {name}: unterminated value"));
        }

        /// Manifests: one (apiVersion, kind) per document that has both.
        #[test]
        fn manifest_documents_round_trip(
            docs in proptest::collection::vec(("[a-z.]{0,8}/?v[0-9]", "[A-Z][a-zA-Z]{0,10}", any::<bool>()), 0..5),
        ) {
            let text = docs.iter().map(|(a, k, q)| {
                if *q { format!("apiVersion: \"{a}\"\nmetadata:\n  kind: x\nkind: '{k}'\n") } else { format!("kind: {k}\r\napiVersion: {a}\n") }
            }).collect::<Vec<_>>().join("---\n");
            let want: Vec<(String, String)> = docs.iter().map(|(a, k, _)| (a.clone(), k.clone())).collect();
            prop_assert_eq!(manifest_documents(&text), want);
        }
    }
}
