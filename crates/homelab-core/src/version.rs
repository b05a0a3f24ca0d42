//! Kubernetes versions as numeric triples (compat-gate §2.2).
//!
//! Two syntaxes:
//! * a **target** ([`KubeVersion::parse_target`]): `^v?\d{1,9}\.\d{1,9}\.\d{1,9}$` after trimming
//!   ASCII whitespace — `1.36`, `1.36.2-rc.1`, `V1.36.2`, `latest` are refused;
//! * a **server** version ([`KubeVersion::parse_server`], `/version` `gitVersion`, node
//!   `kubeletVersion`): the same triple with an optional `v` and an ignored suffix starting with
//!   `-` or `+` (`v1.35.6+k3s1`).
//!
//! Comparisons are numeric on (major, minor, patch) — never on strings (the v-prefix bug of
//! 2026-06-21). [`fmt::Display`] prints the normalised triple without `v`; the kubeadm argument is
//! [`KubeVersion::kubeadm_arg`].

use std::fmt;

/// A numeric (major, minor, patch) triple; ordering is numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// Why a version string was refused; `Display` quotes the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError {
    pub input: String,
    pub reason: &'static str,
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a valid version ({})",
            self.input, self.reason
        )
    }
}

impl std::error::Error for VersionError {}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn triple(s: &str) -> Option<KubeVersion> {
    let mut it = s.split('.');
    let major = num(it.next()?)?;
    let minor = num(it.next()?)?;
    let patch = num(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    Some(KubeVersion {
        major,
        minor,
        patch,
    })
}

impl KubeVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KubeVersion {
            major,
            minor,
            patch,
        }
    }

    /// The target syntax (§2.2.1): optional lowercase `v`, exactly three numbers, nothing else.
    pub fn parse_target(input: &str) -> Result<KubeVersion, VersionError> {
        let err = |reason| VersionError {
            input: input.to_string(),
            reason,
        };
        let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
        if s.is_empty() {
            return Err(err("empty"));
        }
        let s = s.strip_prefix('v').unwrap_or(s);
        triple(s).ok_or_else(|| err("expected MAJOR.MINOR.PATCH with an optional leading v"))
    }

    /// The server syntax (§2.2.2): optional `v`, a triple, then optionally `-…` or `+…`.
    pub fn parse_server(input: &str) -> Result<KubeVersion, VersionError> {
        let err = |reason| VersionError {
            input: input.to_string(),
            reason,
        };
        let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
        let s = s.strip_prefix('v').unwrap_or(s);
        let core = s.split(['-', '+']).next().unwrap_or("");
        triple(core).ok_or_else(|| err("expected [v]MAJOR.MINOR.PATCH[-+suffix]"))
    }

    /// (major, minor): the "minor of X" of §2.2.4.
    pub fn minor_key(&self) -> (u32, u32) {
        (self.major, self.minor)
    }

    /// `1.36` (no patch).
    pub fn minor_string(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// The argument kubeadm wants: `v1.36.2`.
    pub fn kubeadm_arg(&self) -> String {
        format!("v{self}")
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_forms() {
        let v = KubeVersion::new(1, 36, 2);
        assert_eq!(KubeVersion::parse_target("1.36.2"), Ok(v));
        assert_eq!(KubeVersion::parse_target("v1.36.2"), Ok(v));
        assert_eq!(KubeVersion::parse_target(" \tv1.36.2\n"), Ok(v));
        for bad in [
            "1.36",
            "1.36.2-rc.1",
            "V1.36.2",
            "latest",
            "",
            "  ",
            "1.36.2.1",
            "1..2",
            "1.36.x",
            "1234567890.1.1",
            "+1.2.3",
            "v",
            "1.36.2+k3s1",
            "１.36.2",
        ] {
            assert!(KubeVersion::parse_target(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn server_forms() {
        let v = KubeVersion::new(1, 35, 6);
        for ok in [
            "v1.35.6",
            "1.35.6",
            "v1.35.6+k3s1",
            "v1.35.6-eks-1234",
            "v1.35.6-rc.0+abc",
        ] {
            assert_eq!(KubeVersion::parse_server(ok), Ok(v), "{ok}");
        }
        for bad in [
            "",
            "v1.35",
            "latest",
            "v1.35.x",
            "1.35.6_1",
            "containerd://1.7.2",
        ] {
            assert!(KubeVersion::parse_server(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn numeric_order_and_display() {
        let a = KubeVersion::parse_server("v1.9.0").unwrap();
        let b = KubeVersion::parse_target("1.10.0").unwrap();
        assert!(a < b, "string order would say otherwise");
        assert_eq!(
            KubeVersion::parse_target("v1.35.6").unwrap(),
            KubeVersion::parse_target("1.35.6").unwrap()
        );
        assert_eq!(b.to_string(), "1.10.0");
        assert_eq!(b.kubeadm_arg(), "v1.10.0");
        assert_eq!(b.minor_string(), "1.10");
        assert!(KubeVersion::new(1, 35, 9).minor_key() < KubeVersion::new(1, 36, 0).minor_key());
        let e = KubeVersion::parse_target("latest").unwrap_err();
        assert!(e.to_string().contains("\"latest\""), "{e}");
    }
}
