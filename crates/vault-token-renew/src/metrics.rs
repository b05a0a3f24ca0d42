//! Run metrics (§8.5): an atomically rewritten textfile and/or a Pushgateway PUT. The last
//! success time survives failures through a small state file. Failures are warnings only.

use crate::report::{Outcome, RunResult};
use homelab_core::pushgateway::{self, Gauge, Method};
use std::path::Path;
use std::time::Duration;

pub const JOB: &str = "vault_token_renew";

/// The series of one run (pure).
pub fn gauges(o: &Outcome, now: i64, last_success: Option<i64>) -> Vec<Gauge> {
    let mut g = vec![Gauge::new(
        "vault_token_renew_last_run_timestamp_seconds",
        "Unix time of the last vault-token-renew run.",
        now as f64,
    )];
    if let Some(t) = last_success {
        g.push(Gauge::new(
            "vault_token_renew_last_success_timestamp_seconds",
            "Unix time of the last run that renewed or healed the token.",
            t as f64,
        ));
    }
    for r in RunResult::ALL {
        g.push(
            Gauge::new(
                "vault_token_renew_result",
                "1 for the result of the last run, 0 for the others.",
                if r == o.result { 1.0 } else { 0.0 },
            )
            .label("result", r.label()),
        );
    }
    if let Some(ttl) = o.ttl {
        g.push(Gauge::new(
            "vault_token_ttl_seconds",
            "TTL of the token in ~/.vault-token after the run.",
            ttl as f64,
        ));
    }
    if let Some(p) = o.period {
        g.push(Gauge::new(
            "vault_token_period_seconds",
            "Period of the token in ~/.vault-token.",
            p as f64,
        ));
    }
    g.push(Gauge::new(
        "vault_token_renew_swept_tokens",
        "Stale periodic tokens revoked by the last run.",
        o.swept as f64,
    ));
    g
}

/// Write/push the metrics when enabled; returns warnings to print.
pub fn publish(
    o: &Outcome,
    now: i64,
    state_file: &Path,
    textfile: Option<&Path>,
    pushgateway_url: Option<&str>,
    user: &str,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if textfile.is_none() && pushgateway_url.is_none() {
        return warnings;
    }
    // Read-modify-write: the minted accessors (issue 15 item 7) live in the same file.
    let (mut st, _) = crate::state::load(state_file);
    if o.result.success() {
        st.last_success = Some(now);
        warnings.extend(crate::state::save(state_file, &st));
    }
    let last = st.last_success;
    let body = pushgateway::render(&gauges(o, now, last));
    if let Some(p) = textfile {
        if let Err(e) = homelab_core::fsx::atomic_write_mode(p, body.as_bytes(), 0o644) {
            warnings.push(format!("WARNING: metrics textfile {}: {e}", p.display()));
        }
    }
    if let Some(url) = pushgateway_url {
        if let Err(e) = pushgateway::push(
            url,
            JOB,
            &[("user", user)],
            &body,
            Method::Put,
            Duration::from_secs(10),
        ) {
            warnings.push(format!("WARNING: pushgateway: {e}"));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_result_and_optional_series() {
        let o = Outcome {
            result: RunResult::Healed,
            dn: None,
            ttl: Some(10),
            period: None,
            swept: 2,
            error: None,
        };
        let text = pushgateway::render(&gauges(&o, 100, Some(90)));
        assert!(
            text.contains("vault_token_renew_result{result=\"healed\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("vault_token_renew_result{result=\"ok\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("vault_token_renew_last_success_timestamp_seconds 90\n"));
        assert!(text.contains("vault_token_ttl_seconds 10\n"));
        assert!(!text.contains("vault_token_period_seconds"));
        assert!(text.contains("vault_token_renew_swept_tokens 2\n"));
    }
}
