//! Version parsing for the report (spec §3.4): numeric triples, displayed without `v`.
//!
//! The target label follows the strict target rule (compat-gate §2.2.1); `running` and kubelet
//! versions the server rule (§2.2.2: optional `v`, ignored `-`/`+` suffix). An unparseable
//! string is never equal to anything: callers keep the raw text and show it verbatim.

/// The numeric triple shared with compat-gate (homelab-core owns both syntaxes).
pub use homelab_core::version::KubeVersion as Ver;

/// The Job-name form of a target: `1-35-6`.
pub trait Dashed {
    fn dashed(&self) -> String;
}

impl Dashed for Ver {
    fn dashed(&self) -> String {
        format!("{}-{}-{}", self.major, self.minor, self.patch)
    }
}

/// Target rule: `^v?\d{1,9}\.\d{1,9}\.\d{1,9}$` after trimming ASCII whitespace.
pub fn parse_target(s: &str) -> Option<Ver> {
    Ver::parse_target(s).ok()
}

/// Server rule: as the target rule, plus an ignored suffix starting with `-` or `+`.
pub fn parse_server(s: &str) -> Option<Ver> {
    Ver::parse_server(s).ok()
}

/// How a version label is shown: the normalised triple, or the raw text in backticks marked
/// unparseable (escaped for mrkdwn by the caller's `esc`).
pub fn show(raw: &str, parsed: Option<Ver>) -> String {
    match parsed {
        Some(v) => v.to_string(),
        None => format!("`{}` (unparseable)", homelab_core::slack::esc(raw, 300)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_rule() {
        assert_eq!(parse_target("1.35.6").unwrap().to_string(), "1.35.6");
        assert_eq!(parse_target(" v1.36.2 ").unwrap().to_string(), "1.36.2");
        for bad in [
            "1.36",
            "1.36.2-rc.1",
            "V1.36.2",
            "latest",
            "",
            "1.2.3.4",
            "1..3",
            "1.2.1234567890",
        ] {
            assert!(parse_target(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn server_rule() {
        assert_eq!(parse_server("v1.35.6+k3s1").unwrap().to_string(), "1.35.6");
        assert_eq!(parse_server("v1.35.6-eks-1").unwrap().to_string(), "1.35.6");
        assert_eq!(parse_server("1.35.6"), parse_server("v1.35.6"));
        assert!(parse_server("v1.35").is_none());
        assert!(parse_server("garbage").is_none());
    }

    #[test]
    fn numeric_order_not_string_order() {
        assert!(parse_target("1.9.0").unwrap() < parse_target("1.10.0").unwrap());
        assert_eq!(parse_target("1.35.6").unwrap().dashed(), "1-35-6");
    }

    #[test]
    fn unparseable_is_shown_verbatim() {
        assert_eq!(show("v1.35.6", parse_server("v1.35.6")), "1.35.6");
        assert_eq!(show("x`<y>", None), "`x'&lt;y&gt;` (unparseable)");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text: no panic; an accepted target is exactly `v?N.N.N` (after blank trimming),
        /// and every target is also a server version.
        #[test]
        fn parsers_never_panic_and_accept_only_the_grammar(s in "\\PC{0,24}|[ v0-9.+-]{0,16}") {
            let t = s.trim_ascii();
            let core = t.strip_prefix('v').unwrap_or(t);
            let parts: Vec<&str> = core.split('.').collect();
            let well_formed = parts.len() == 3
                && parts.iter().all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()));
            let target = parse_target(&s);
            prop_assert_eq!(target.is_some(), well_formed, "{:?}", s);
            let server = parse_server(&s);
            if target.is_some() {
                prop_assert_eq!(server, target);
            }
            let shown = show(&s, server);
            prop_assert!(!shown.contains('<') && !shown.contains('>'));
        }

        /// Display round-trips through both parsers (with `v`, blanks and a server suffix),
        /// `dashed` mirrors it, and ordering is the numeric tuple order.
        #[test]
        fn round_trip_and_numeric_order(
            a in (0u32..1_000_000_000, 0u32..1_000_000_000, 0u32..1_000_000_000),
            b in (0u32..1_000_000_000, 0u32..1_000_000_000, 0u32..1_000_000_000),
            v in any::<bool>(),
            pad in "[ \\t\\n]{0,2}",
            suffix in "([-+][a-z0-9.-]{1,10})?",
        ) {
            let va = Ver { major: a.0, minor: a.1, patch: a.2 };
            let vb = Ver { major: b.0, minor: b.1, patch: b.2 };
            let text = format!("{}{va}", if v { "v" } else { "" });
            prop_assert_eq!(parse_target(&format!("{pad}{text}{pad}")), Some(va));
            prop_assert_eq!(parse_server(&format!("{pad}{text}{suffix}{pad}")), Some(va));
            prop_assert_eq!(va.dashed(), va.to_string().replace('.', "-"));
            prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
            if !suffix.is_empty() {
                prop_assert_eq!(parse_target(&format!("{text}{suffix}")), None);
            }
        }
    }
}
