//! `q()`: the bash `printf %q` rendering the original script used for display names and
//! policy lists in its log lines (spec §4.2). Kept here: no other binary needs it (§8.8).

/// Characters copied verbatim anywhere in the value.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "%+-./:=@_".contains(c)
}

/// Render `s` the way bash's `%q` does.
pub fn q(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    if s.chars().any(char::is_control) {
        return ansi_c(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if plain(c) || !c.is_ascii() {
            out.push(c);
        } else if c == '~' || c == '#' {
            if i == 0 {
                out.push('\\');
            }
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// `$'…'` form, used as soon as any control character is present.
fn ansi_c(s: &str) -> String {
    let mut out = String::from("$'");
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::q;

    /// Spec §10.2 item 12, case by case.
    #[test]
    fn spec_cases() {
        assert_eq!(q(""), "''");
        assert_eq!(q("oidc-vbarzin"), "oidc-vbarzin");
        assert_eq!(q("emil.barzin@gmail.com"), "emil.barzin@gmail.com");
        assert_eq!(q("a b"), "a\\ b");
        assert_eq!(q("x,y"), "x\\,y");
        assert_eq!(q("~a"), "\\~a");
        assert_eq!(q("a~b"), "a~b");
        assert_eq!(q("#a"), "\\#a");
        assert_eq!(q("q\"s"), "q\\\"s");
        assert_eq!(q("line\ntwo"), "$'line\\ntwo'");
    }

    #[test]
    fn policy_list_and_other_specials() {
        assert_eq!(
            q("default,sops-admin,vault-admin"),
            "default\\,sops-admin\\,vault-admin"
        );
        assert_eq!(q("a#b"), "a#b");
        assert_eq!(q("$x;`y`"), "\\$x\\;\\`y\\`");
        assert_eq!(q("naïve"), "naïve");
        assert_eq!(q("tab\there'"), "$'tab\\there\\''");
        assert_eq!(q("bell\u{7}"), "$'bell\\x07'");
        assert_eq!(q("%+-./:=@_"), "%+-./:=@_");
    }
}
