//! Property tests for the parsers that take outside input: no panic, and the invariants the
//! callers rely on.

use homelab_core::http::UrlParts;
use homelab_core::pushgateway::{group_path, parse_api_metrics};
use homelab_core::slack::esc;
use homelab_core::{redact_dsn, redact_url};
use proptest::prelude::*;

proptest! {
    #[test]
    fn esc_is_bounded_and_inert(s in "\\PC*|[\\x00-\\x1f`<>&*_~]{0,80}", cap in 1usize..100) {
        let out = esc(&s, cap);
        // Never a raw control char, backtick, or angle bracket (no mention/link/code break).
        prop_assert!(!out.chars().any(|c| c.is_control() || c == '`' || c == '<' || c == '>'));
        // Every & starts an entity we produced.
        for (i, _) in out.match_indices('&') {
            let rest = &out[i..];
            prop_assert!(rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;"));
        }
        // Unescaping gives at most cap scalar values (+ the ellipsis).
        let plain = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
        prop_assert!(plain.chars().count() <= cap + 1);
        // Inputs within the cap and free of special characters pass through untouched.
        if s.chars().count() <= cap && !s.chars().any(|c| c.is_control() || "`<>&".contains(c)) {
            prop_assert_eq!(&out, &s);
        }
    }

    #[test]
    fn redact_dsn_never_shows_the_password(
        user in "[a-z]{1,8}", pw in "[A-Za-z0-9]{8,20}", host in "[a-z]{1,10}", db in "[a-z]{1,8}"
    ) {
        let url = format!("postgres://{user}:{pw}@{host}:5432/{db}");
        let r = redact_dsn(&url);
        prop_assert!(!r.contains(&pw));
        prop_assert_eq!(r, format!("postgres://{user}:***@{host}:5432/{db}"));
        let kv = format!("host={host} user={user} password={pw} dbname={db}");
        let r = redact_dsn(&kv);
        prop_assert!(!r.contains(&pw));
        prop_assert_eq!(r, format!("host={host} user={user} password=*** dbname={db}"));
    }

    #[test]
    fn redact_dsn_and_url_never_panic(s in "\\PC*") {
        let _ = redact_dsn(&s);
        let _ = redact_url(&s);
        let _ = UrlParts::parse(&s);
    }

    #[test]
    fn redact_url_drops_path_query_and_userinfo(
        host in "[a-z]{1,10}\\.[a-z]{2,3}", path in "(/[A-Za-z0-9]{1,12}){0,4}", secret in "[A-Za-z0-9]{12,24}"
    ) {
        let u = format!("https://user:{secret}@{host}{path}/{secret}?token={secret}");
        let r = redact_url(&u);
        prop_assert!(!r.contains(&secret));
        prop_assert_eq!(r, format!("https://{host}/…"));
    }

    #[test]
    fn group_path_segments_never_contain_raw_slashes(job in "[a-z_-]{1,12}", v in "\\PC{0,20}") {
        let p = group_path(&job, &[("instance", &v)]);
        let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        // metrics / job / <job> / <label> / <value>
        prop_assert_eq!(segs.len(), 5, "{}", p);
    }

    #[test]
    fn pushgateway_parser_never_panics(v in "\\PC{0,12}", n in 0usize..4) {
        let doc = serde_json::json!({"status":"success","data":[{
            "labels": {"job": v.clone()},
            "m": {"metrics": (0..n).map(|i| serde_json::json!({"labels": {"i": i.to_string()}, "value": v.clone()})).collect::<Vec<_>>()}
        }]});
        let g = parse_api_metrics(&doc).unwrap();
        prop_assert_eq!(g[0].samples.len(), n);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any string: parsing never panics, and a refusal quotes the input it refused.
    #[test]
    fn version_parsers_never_panic(s in "\\PC{0,24}|[v0-9.+ -]{0,16}") {
        use homelab_core::version::KubeVersion;
        if let Err(e) = KubeVersion::parse_target(&s) {
            let quoted = format!("{:?}", s);
            prop_assert!(e.to_string().contains(&quoted));
        }
        let _ = KubeVersion::parse_server(&s);
    }

    /// A triple round-trips through both syntaxes (with and without `v`, with a server suffix),
    /// and ordering is numeric, never lexicographic.
    #[test]
    fn version_round_trip_and_numeric_order(
        a in (0u32..1000, 0u32..1000, 0u32..1000),
        b in (0u32..1000, 0u32..1000, 0u32..1000),
        v in proptest::bool::ANY,
        suffix in "([-+][a-z0-9.]{1,8})?",
    ) {
        use homelab_core::version::KubeVersion;
        let ka = KubeVersion::new(a.0, a.1, a.2);
        let kb = KubeVersion::new(b.0, b.1, b.2);
        let text = format!("{}{ka}", if v { "v" } else { "" });
        prop_assert_eq!(KubeVersion::parse_target(&text).unwrap(), ka);
        prop_assert_eq!(KubeVersion::parse_server(&format!("{text}{suffix}")).unwrap(), ka);
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        prop_assert_eq!(KubeVersion::parse_target(&ka.kubeadm_arg()).unwrap(), ka);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary kubeconfig text (garbage, YAML of the wrong shape, truncated real ones) is an
    /// error naming the file, never a panic, and never echoes a token it saw.
    #[test]
    fn kubeconfig_loader_never_panics(
        junk in "\\PC{0,200}",
        cut in 0usize..400,
    ) {
        let real = "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user:\n    token: s3cr3t-t0ken-value\n";
        let dir = tempfile::tempdir().unwrap();
        for (i, text) in [junk.clone(), real[..cut.min(real.len())].to_string()].iter().enumerate() {
            let p = dir.path().join(format!("config{i}"));
            std::fs::write(&p, text).unwrap();
            if let Err(e) = homelab_core::kube::load_kubeconfig(p.to_str().unwrap(), None) {
                let msg = e.to_string();
                prop_assert!(!msg.contains("s3cr3t-t0ken-value"), "token leaked: {}", msg);
            }
        }
    }
}
