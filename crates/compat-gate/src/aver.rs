//! Addon and runtime versions: matrix rows (`^v?\d+(\.\d+){1,2}$`), k8s minors
//! (`^v?\d+\.\d+$`), running versions read from image tags or labels (§3.3.2) and containerd
//! versions (§3.5). Comparisons are numeric; missing components count as 0.

use std::cmp::Ordering;
use std::fmt;

/// A k8s minor `(major, minor)`, printed `1.35`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor(pub u32, pub u32);

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Minor {
    /// `^v?\d+\.\d+$`.
    pub fn parse(s: &str) -> Option<Minor> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let (a, b) = s.split_once('.')?;
        Some(Minor(num(a)?, num(b)?))
    }
    pub fn of(v: &homelab_core::version::KubeVersion) -> Minor {
        Minor(v.major, v.minor)
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A dotted version with 2 or 3 numeric components (`0.12`, `1.18.1`).
#[derive(Debug, Clone)]
pub struct Ver {
    parts: Vec<u32>,
}

impl Ver {
    /// `^v?\d+(\.\d+){1,2}$` (matrix rows).
    pub fn parse(s: &str) -> Option<Ver> {
        Ver::parse_plain(s.strip_prefix('v').unwrap_or(s))
    }
    /// `^\d+(\.\d+){1,2}$` (no `v`).
    fn parse_plain(s: &str) -> Option<Ver> {
        let parts: Option<Vec<u32>> = s.split('.').map(num).collect();
        let parts = parts?;
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        Some(Ver { parts })
    }
    /// `^v?\d+\.\d+\.\d+$` (containerd floors).
    pub fn parse_triple(s: &str) -> Option<Ver> {
        Ver::parse(s).filter(|v| v.parts.len() == 3)
    }
    fn get(&self, i: usize) -> u32 {
        self.parts.get(i).copied().unwrap_or(0)
    }
    /// (major, minor).
    pub fn major_minor(&self) -> (u32, u32) {
        (self.get(0), self.get(1))
    }
}

impl Ord for Ver {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.get(0), self.get(1), self.get(2)).cmp(&(o.get(0), o.get(1), o.get(2)))
    }
}
impl PartialEq for Ver {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ver {}
impl PartialOrd for Ver {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl fmt::Display for Ver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: Vec<String> = self.parts.iter().map(u32::to_string).collect();
        f.write_str(&s.join("."))
    }
}

/// Leading `\d+\.\d+(\.\d+)?` followed by end, `-`, `+` or `_`, after one optional `v`
/// (§3.3.2). `Err` says why not.
pub fn running_version(raw: &str) -> Result<Ver, String> {
    let s = raw.strip_prefix('v').unwrap_or(raw);
    let end = s.find(['-', '+', '_']).unwrap_or(s.len());
    let core = &s[..end];
    let parts: Vec<&str> = core.split('.').collect();
    if (2..=3).contains(&parts.len()) {
        if let Some(v) = Ver::parse_plain(core) {
            return Ok(v);
        }
    }
    Err(format!("{raw:?} is not a version"))
}

/// The tag of an image reference: text after the last `:` past the last `/`, minus any
/// `@digest`. `Err` says why there is none.
pub fn image_tag(image: &str) -> Result<&str, String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => Ok(tag),
        _ if digest.is_some() => Err(format!("image {image} is pinned by digest only")),
        _ => Err(format!("image {image} has no tag")),
    }
}

/// The running version from an image reference (§3.3.2).
pub fn version_from_image(image: &str) -> Result<Ver, String> {
    let tag = image_tag(image)?;
    running_version(tag).map_err(|_| format!("image tag {tag:?} of {image} is not a version"))
}

/// `containerd://<ver>` → the containerd version (v-prefix and `-`/`+` suffix allowed).
pub fn containerd_version(runtime: &str) -> Option<Ver> {
    let v = runtime.strip_prefix("containerd://")?;
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next().unwrap_or("");
    Ver::parse_triple(core)
}

/// §3.5.3: is `v` supported by the floor list? `Err(floor)` names the floor to reach: the
/// same-branch floor, else the lowest higher one.
pub fn containerd_supported(v: &Ver, floors: &[Ver]) -> Result<(), Ver> {
    let mm = v.major_minor();
    if let Some(f) = floors.iter().find(|f| f.major_minor() == mm) {
        return if v >= f { Ok(()) } else { Err(f.clone()) };
    }
    if floors.iter().all(|f| f.major_minor() < mm) {
        return Ok(());
    }
    let mut higher: Vec<&Ver> = floors.iter().filter(|f| f.major_minor() > mm).collect();
    higher.sort();
    Err(higher[0].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Ver {
        Ver::parse(s).unwrap()
    }

    #[test]
    fn tags_and_labels() {
        let ok = [
            ("repo:5000/x:v1.18.1-ubi", "1.18.1"),
            ("ghcr.io/kyverno/kyverno:v1.16.2", "1.16.2"),
            (
                "oci.external-secrets.io/external-secrets/external-secrets:v0.12.1",
                "0.12.1",
            ),
            ("nvcr.io/nvidia/gpu-operator:v25.3.0", "25.3.0"),
            ("docker.io/calico/node:v3.30.2@sha256:abc123", "3.30.2"),
            ("quay.io/x/y:2.6", "2.6"),
            ("x:1.2.3_build7", "1.2.3"),
            ("x:1.2.3+meta", "1.2.3"),
            ("localhost:5000/x:1.2", "1.2"),
        ];
        for (img, want) in ok {
            assert_eq!(version_from_image(img).unwrap().to_string(), want, "{img}");
        }
        for bad in [
            "x@sha256:0123456789abcdef",
            "x:latest",
            "x",
            "repo:5000/x",
            "x:vv1.2",
            "x:1",
            "x:1.2.3.4",
            "x:stable-1.2",
            "x:1.2rc1",
            "x:",
        ] {
            assert!(version_from_image(bad).is_err(), "{bad} accepted");
        }
        assert!(version_from_image("x@sha256:0123")
            .unwrap_err()
            .contains("digest only"));
        assert_eq!(running_version("v1.18.1").unwrap().to_string(), "1.18.1");
        assert!(running_version("").is_err());
    }

    #[test]
    fn numeric_order_missing_is_zero() {
        assert!(v("1.10") > v("1.9.9"));
        assert_eq!(v("2.6").cmp(&v("2.6.0")), Ordering::Equal);
        assert!(v("v0.12") < v("2.6"));
        assert!(Ver::parse("1").is_none() && Ver::parse("1.2.3.4").is_none());
        assert!(Ver::parse("V1.2").is_none() && Ver::parse("1.x").is_none());
        assert_eq!(Minor::parse("v1.35"), Some(Minor(1, 35)));
        assert!(Minor::parse("1.35.1").is_none() && Minor::parse("1").is_none());
        assert!(Minor(1, 9) < Minor(1, 10));
    }

    #[test]
    fn containerd_rule() {
        let floors = [v("1.7.24"), v("2.0.1")];
        assert_eq!(
            containerd_supported(&v("2.1.0"), &floors),
            Ok(()),
            "above every branch"
        );
        assert_eq!(containerd_supported(&v("2.0.1"), &floors), Ok(()));
        assert_eq!(containerd_supported(&v("2.0.0"), &floors), Err(v("2.0.1")));
        assert_eq!(
            containerd_supported(&v("1.7.23"), &floors),
            Err(v("1.7.24"))
        );
        assert_eq!(
            containerd_supported(&v("1.6.99"), &floors),
            Err(v("1.7.24")),
            "below: lowest higher floor"
        );
        let f135 = [v("2.2.0"), v("2.1.5"), v("1.7.28")];
        assert_eq!(containerd_supported(&v("2.0.6"), &f135), Err(v("2.1.5")));
        assert_eq!(
            containerd_version("containerd://v2.1.4-k3s1"),
            Some(v("2.1.4"))
        );
        assert_eq!(
            containerd_version("containerd://1.7.28+abc"),
            Some(v("1.7.28"))
        );
        assert_eq!(containerd_version("cri-o://1.30.0"), None);
        assert_eq!(containerd_version("containerd://"), None);
        assert_eq!(containerd_version("containerd://2.1"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text: no panic; whatever is accepted matches the documented grammar.
        #[test]
        fn parsers_never_panic_and_accept_only_the_grammar(
            s in "\\PC{0,24}|v?[0-9.]{0,14}|[v0-9.+_-]{0,16}",
        ) {
            let digits = |p: &str| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit());
            let plain = s.strip_prefix('v').unwrap_or(&s);
            let parts: Vec<&str> = plain.split('.').collect();
            let m = Minor::parse(&s);
            prop_assert_eq!(m.is_some(), parts.len() == 2 && parts.iter().all(|p| digits(p)), "{:?}", s);
            let v = Ver::parse(&s);
            prop_assert_eq!(v.is_some(), (2..=3).contains(&parts.len()) && parts.iter().all(|p| digits(p)), "{:?}", s);
            prop_assert_eq!(Ver::parse_triple(&s).is_some(), v.is_some() && parts.len() == 3);
            if let Err(e) = running_version(&s) {
                prop_assert!(e.contains(&format!("{s:?}")), "{}", e);
            }
            let _ = version_from_image(&s);
            let _ = containerd_version(&s);
            let _ = containerd_version(&format!("containerd://{s}"));
        }

        /// Display round-trips (with or without `v`) and order is the numeric tuple order.
        #[test]
        fn minor_round_trip_and_order(a in (0u32..1_000_000, 0u32..1_000_000), b in (0u32..1_000_000, 0u32..1_000_000), v in any::<bool>()) {
            let (ma, mb) = (Minor(a.0, a.1), Minor(b.0, b.1));
            let text = format!("{}{ma}", if v { "v" } else { "" });
            prop_assert_eq!(Minor::parse(&text), Some(ma));
            prop_assert_eq!(ma.cmp(&mb), a.cmp(&b));
        }

        #[test]
        fn ver_round_trip_and_numeric_order(
            a in proptest::collection::vec(0u32..1_000_000_000, 2..=3),
            b in proptest::collection::vec(0u32..1_000_000_000, 2..=3),
            v in any::<bool>(),
            suffix in "([-+_][a-z0-9.]{0,8})?",
        ) {
            let pa = Ver::parse(&a.iter().map(u32::to_string).collect::<Vec<_>>().join(".")).unwrap();
            let pb = Ver::parse(&b.iter().map(u32::to_string).collect::<Vec<_>>().join(".")).unwrap();
            let text = format!("{}{pa}", if v { "v" } else { "" });
            let back = Ver::parse(&text).unwrap();
            prop_assert_eq!(back.to_string(), pa.to_string());
            prop_assert_eq!(&back.parts, &a);
            // Running versions accept the same core plus a build suffix.
            prop_assert_eq!(&running_version(&format!("{text}{suffix}")).unwrap().parts, &a);
            let tuple = |p: &[u32]| (p[0], p[1], p.get(2).copied().unwrap_or(0));
            prop_assert_eq!(pa.cmp(&pb), tuple(&a).cmp(&tuple(&b)));
            prop_assert_eq!(pa == pb, tuple(&a) == tuple(&b));
            prop_assert_eq!(pa.major_minor(), (a[0], a[1]));
        }

        /// The containerd rule: a version at or above its own branch floor passes; a refusal
        /// always names a floor above the version.
        #[test]
        fn containerd_supported_refusals_point_upward(
            floors in proptest::collection::vec((0u32..4, 0u32..4, 0u32..6), 1..5),
            v in (0u32..5, 0u32..5, 0u32..7),
        ) {
            let mk = |t: (u32, u32, u32)| Ver::parse(&format!("{}.{}.{}", t.0, t.1, t.2)).unwrap();
            let fl: Vec<Ver> = floors.iter().copied().map(mk).collect();
            let ver = mk(v);
            prop_assert_eq!(containerd_version(&format!("containerd://v{ver}-k3s1")), Some(ver.clone()));
            match containerd_supported(&ver, &fl) {
                Ok(()) => {}
                Err(f) => {
                    prop_assert!(f > ver);
                    prop_assert!(fl.contains(&f));
                }
            }
        }
    }
}
