//! Escaping of outside-controlled names (namespaces, networkset and host-endpoint names from
//! the database) for every document `policy` and `graph` write, and a small YAML emitter. Each
//! function guarantees that no input can end the element it is placed in: a name can never add
//! a YAML key, a mermaid statement, a dot attribute, an SVG element or a log line.

use serde_json::Value;

/// One-line, printable text for logs, terminals and comments: control characters (incl. the
/// Unicode line/paragraph separators and NEL, which YAML treats as line breaks) become `?`,
/// and more than `cap` characters end in `…`.
pub fn clean(s: &str, cap: usize) -> String {
    let mut out = String::with_capacity(s.len().min(cap * 4));
    for (i, c) in s.chars().enumerate() {
        if i == cap {
            out.push('…');
            break;
        }
        let bad = c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{feff}' | '\u{200b}'..='\u{200f}'
            );
        out.push(if bad { '?' } else { c });
    }
    out
}

/// XML text and attribute content (`&`, `<`, `>`, `"`, `'`); characters XML 1.0 forbids become
/// U+FFFD.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Mermaid node/edge label inside `["…"]`: everything outside `[A-Za-z0-9 ._/:-]` becomes an
/// entity code `#<decimal>;`, mermaid's own escape
/// (mermaid-js/mermaid `packages/mermaid/src/diagrams/flowchart` docs "Entity codes to escape
/// characters"), so quotes, brackets, pipes, `;` and newlines can never close the label.
pub fn mermaid(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '/' | ':' | '-') {
            out.push(c);
        } else {
            out.push_str(&format!("#{};", c as u32));
        }
    }
    out
}

/// A Graphviz double-quoted string body: `"` and `\` escaped, line breaks and other control
/// characters replaced (graphviz.org/doc/info/lang.html: in quoted strings only `\"` is an
/// escape; a trailing `\` would escape the closing quote, so backslashes are doubled).
pub fn dot(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in clean(s, 200).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// YAML reserved plain scalars (YAML 1.1 booleans and null, which Kubernetes' parser still
/// reads as such) are quoted, as is anything not made of safe characters.
fn yaml_plain_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphabetic() {
        return false;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/' | b'_' | b'-'))
    {
        return false;
    }
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
    )
}

/// A scalar: plain when unambiguous, else a JSON string (valid YAML double-quoted style, every
/// control character escaped), so no value can start a new key or document.
pub fn yaml_scalar(s: &str) -> String {
    if yaml_plain_ok(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

/// Block-style YAML for a JSON value (keys in the map's order), `indent` spaces deep.
pub fn yaml(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                out.push_str(&" ".repeat(indent));
                out.push_str(&yaml_scalar(k));
                out.push(':');
                value_after_key(val, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                out.push_str(&" ".repeat(indent));
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // First key on the dash line, the rest aligned under it.
                        let mut first = true;
                        for (k, val) in m {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                out.push_str(&" ".repeat(indent + 2));
                            }
                            out.push_str(&yaml_scalar(k));
                            out.push(':');
                            value_after_key(val, indent + 2, out);
                        }
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&inline(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn value_after_key(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml(val, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml(val, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => yaml_scalar(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a name holds, each escape keeps it inside its element.
        #[test]
        fn escapes_confine_any_name(name in "\\PC{0,40}|[\"'<>&;#\\]\\[\\n\r\u{2028}%{}|-]{0,20}") {
            let m = mermaid(&name);
            prop_assert!(m.chars().all(|c| c.is_ascii_alphanumeric() || " ._/:-#;".contains(c)), "{}", m);
            let x = xml(&name);
            prop_assert!(!x.contains(['<', '>', '"', '\'', '\n', '\r']), "{}", x);
            let d = dot(&name);
            prop_assert!(!d.contains(['\n', '\r']));
            prop_assert!(!d.replace("\\\\", "").replace("\\\"", "").contains('"'), "{}", d);
            let c = clean(&name, 30);
            let bad_char = c.chars().any(|ch| ch.is_control() || ch == '\u{2028}' || ch == '\u{2029}');
            prop_assert!(!bad_char, "{}", c);
            let y = yaml_scalar(&name);
            prop_assert!(!y.contains(['\n', '\r']) && (y == name || y.starts_with('"')), "{}", y);
        }
    }

    #[test]
    fn yaml_blocks() {
        let v = json!({"a": {"b": [], "c": {}}, "d": [{"e": 1, "f": "x y"}, "plain"], "g": "0.0.0.0/0", "h": "yes"});
        let mut s = String::new();
        yaml(&v, 0, &mut s);
        assert_eq!(
            s,
            "a:\n  b: []\n  c: {}\nd:\n- e: 1\n  f: \"x y\"\n- plain\ng: \"0.0.0.0/0\"\nh: \"yes\"\n"
        );
    }

    #[test]
    fn escapes_hold_for_hostile_names() {
        let evil = "a\"]; b-->c\n%%{init}%% <script>&'\\\u{2028}";
        assert!(
            !mermaid(evil).contains(['"', ']', ';', '\n', '<', '>', '%', '{']) || {
                // Entity codes contain `;` and `#` only as `#<n>;`.
                let m = mermaid(evil);
                m.split('#').skip(1).all(|p| {
                    p.split_once(';')
                        .is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
                }) && !m.contains(['"', ']', '\n', '<', '%', '{'])
            }
        );
        let x = xml(evil);
        assert!(!x.contains(['<', '>', '"', '\'', '\n']), "{x}");
        let d = dot(evil);
        assert!(!d.contains('\n'));
        assert!(
            d.replace("\\\\", "")
                .replace("\\\"", "")
                .find('"')
                .is_none(),
            "{d}"
        );
        let c = clean(evil, 100);
        assert!(!c.contains(['\n', '\u{2028}']), "{c}");
        assert_eq!(clean("abcdef", 3), "abc…");
        assert_eq!(yaml_scalar(evil), serde_json::to_string(evil).unwrap());
    }
}
