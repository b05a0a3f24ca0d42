//! Redaction of credentials embedded in connection strings and URLs.

/// Replace the password of a Postgres DSN with `***`.
///
/// Handles both URL form (`postgres://user:pw@host/db`) and key/value form
/// (`host=h password=pw dbname=d`, including single-quoted values). Anything that does not
/// look like either is returned unchanged, since it cannot carry a password we recognise.
pub fn redact_dsn(dsn: &str) -> String {
    let trimmed = dsn.trim_start();
    if let Some(rest) = trimmed
        .strip_prefix("postgres://")
        .map(|r| ("postgres://", r))
        .or_else(|| {
            trimmed
                .strip_prefix("postgresql://")
                .map(|r| ("postgresql://", r))
        })
    {
        let (scheme, rest) = rest;
        let mut out = String::from(scheme);
        out.push_str(&redact_userinfo(rest));
        // A password may also be passed as a query parameter.
        return redact_query_password(&out);
    }
    redact_kv_password(dsn)
}

/// Redact the password in `user:pw@host...` (the part after the scheme).
fn redact_userinfo(rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let host = &authority[at..];
            let user = match userinfo.find(':') {
                Some(c) => format!("{}:***", &userinfo[..c]),
                None => userinfo.to_string(),
            };
            format!("{user}{host}{}", &rest[authority_end..])
        }
        None => rest.to_string(),
    }
}

fn redact_query_password(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_string();
    };
    let (head, query) = url.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}{}", parts.join("&"))
}

fn redact_kv_password(dsn: &str) -> String {
    let mut out = String::with_capacity(dsn.len());
    let bytes = dsn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Copy whitespace.
        if bytes[i].is_ascii_whitespace() {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        // Read a key up to '=' or whitespace.
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &dsn[key_start..i];
        // Allow spaces around '='.
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' {
            out.push_str(key);
            continue;
        }
        out.push_str(&dsn[key_start..=j]);
        j += 1;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            out.push(bytes[j] as char);
            j += 1;
        }
        // Value: quoted or bare.
        let val_start = j;
        if j < bytes.len() && bytes[j] == b'\'' {
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                if bytes[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
        }
        if key.eq_ignore_ascii_case("password") {
            out.push_str("***");
        } else {
            out.push_str(&dsn[val_start..j]);
        }
        i = j;
    }
    out
}

/// Strip everything but `scheme://host[:port]` from a URL, for log lines that must not carry
/// a secret path (Slack webhooks), query string or userinfo. Renders as `scheme://host/…`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "<invalid url>".to_string(),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}/…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_dsn_password_is_masked() {
        assert_eq!(
            redact_dsn("postgres://edges:s3cr3t@db.example:5432/goldmane_edges"),
            "postgres://edges:***@db.example:5432/goldmane_edges"
        );
        assert_eq!(
            redact_dsn("postgresql://u:p%40ss@h/db?sslmode=require&password=x"),
            "postgresql://u:***@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact_dsn("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn kv_dsn_password_is_masked() {
        assert_eq!(
            redact_dsn("host=127.0.0.1 port=5432 user=edges password=s3cr3t dbname=g"),
            "host=127.0.0.1 port=5432 user=edges password=*** dbname=g"
        );
        assert_eq!(
            redact_dsn("password = 'a b\\'c' host=x"),
            "password = *** host=x"
        );
        assert_eq!(redact_dsn("host=x"), "host=x");
    }

    #[test]
    fn url_redaction_keeps_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://user:pw@pg:9091/x?y=z"),
            "http://pg:9091/…"
        );
        assert_eq!(redact_url("nonsense"), "<invalid url>");
    }
}
