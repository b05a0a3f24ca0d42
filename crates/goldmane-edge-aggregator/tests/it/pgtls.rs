//! DATABASE_URL `sslmode`/`sslrootcert` as libpq means them (§2.1 DATABASE_URL row, §4.6
//! "TLS per sslmode via rustls"), against a real Postgres serving TLS with a certificate from
//! the test's throwaway CA, for a role that may only connect over TLS.

use super::common::*;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

/// The host name in the Postgres server certificate (and nowhere in DNS: `hostaddr` dials).
const PG_NAME: &str = "pg.test.internal";

/// Serve TLS with `pki.ca`'s certificate for [`PG_NAME`] only; role `tlsonly` (owner of
/// `goldmane_edges`) is refused over plain TCP.
fn serve_tls(w: &World) {
    let pg = w.pg();
    let data = std::path::PathBuf::from(pg.psql("postgres", "SHOW data_directory").trim());
    let owner = std::fs::metadata(&data).unwrap();
    let leaf = w.pki.ca.issue("postgres", &[PG_NAME], false);
    for (name, pem) in [
        ("server.crt", &leaf.cert_pem),
        ("server.key", &leaf.key_pem),
    ] {
        let p = data.join(name);
        std::fs::write(&p, pem).unwrap();
        std::os::unix::fs::chown(&p, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let hba = pg.psql("postgres", "SHOW hba_file");
    let hba = hba.trim();
    let old = std::fs::read_to_string(hba).unwrap();
    std::fs::write(
        hba,
        format!(
            "hostssl all tlsonly 127.0.0.1/32 trust\nhost all tlsonly 127.0.0.1/32 reject\n{old}"
        ),
    )
    .unwrap();
    pg.psql("postgres", "CREATE ROLE tlsonly LOGIN");
    pg.psql("postgres", "ALTER DATABASE goldmane_edges OWNER TO tlsonly");
    pg.psql("postgres", "ALTER SYSTEM SET ssl = on");
    pg.psql("postgres", "SELECT pg_reload_conf()");
    testkit::wait_until(10, "ssl = on", || {
        pg.psql("postgres", "SHOW ssl").trim() == "on"
    });
}

fn env_with(w: &World, dsn: String) -> HashMap<String, String> {
    let mut env = w.env();
    env.insert("DATABASE_URL".into(), dsn);
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    env
}

fn clear(w: &World) {
    let _ = w.pg().try_psql("goldmane_edges", "DELETE FROM edge");
}

#[test]
fn verify_modes_against_a_tls_only_postgres() {
    let w = World::new(true);
    serve_tls(&w);
    let port = w.pg().port();
    let ca = w.ca.display().to_string();
    let foreign = w.dir.path().join("foreign-ca.crt");
    std::fs::write(&foreign, &w.pki.foreign_ca.cert_pem).unwrap();
    let t = now() - 300;
    w.fake
        .add_flows([flow(1, "a", "b", 1, t), flow(2, "c", "d", 2, t)]);
    let url = |host: &str, q: &str| {
        format!("postgres://tlsonly:{PW}@{host}:{port}/goldmane_edges?hostaddr=127.0.0.1&{q}")
    };

    // Trusted: the chain to sslrootcert, and for verify-full the host name too. `require`
    // encrypts without checking; require + sslrootcert verifies the chain (libpq).
    for dsn in [
        url(PG_NAME, &format!("sslmode=verify-full&sslrootcert={ca}")),
        format!(
            "host={PG_NAME} hostaddr=127.0.0.1 port={port} user=tlsonly password='{PW}' \
             dbname=goldmane_edges sslmode=verify-full sslrootcert='{ca}'"
        ),
        url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        url("127.0.0.1", &format!("sslmode=require&sslrootcert={ca}")),
        url("127.0.0.1", "sslmode=require"),
        url("127.0.0.1", "sslmode=prefer"),
    ] {
        clear(&w);
        let a = w.spawn(&[], &env_with(&w, dsn.clone()));
        a.wait_for(20, &format!("2 rows via {dsn}"), || {
            total_count(w.pg()) == 2
        });
        assert!(!a.stderr().contains("ERROR db: "), "{dsn}: {}", a.stderr());
    }

    // Not trusted: wrong host name for verify-full, a foreign CA, the web PKI roots. The DB
    // error is logged with its certificate reason and retried; nothing is written and the
    // process stays up (spec 4.5.2: streaming continues, nothing lost while it lives).
    let foreign = foreign.display().to_string();
    for (dsn, reason) in [
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            "not valid for name",
        ),
        (
            url(
                PG_NAME,
                &format!("sslmode=verify-full&sslrootcert={foreign}"),
            ),
            "UnknownIssuer",
        ),
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={foreign}"),
            ),
            "UnknownIssuer",
        ),
        (url(PG_NAME, "sslmode=verify-full"), "UnknownIssuer"),
    ] {
        clear(&w);
        let a = w.spawn(&[], &env_with(&w, dsn.clone()));
        a.wait_for(20, "two failed DB attempts", || a.count("ERROR db: ") >= 2);
        let line = a
            .stderr()
            .lines()
            .find(|l| l.contains("ERROR db: "))
            .unwrap_or_default()
            .to_string();
        assert!(
            line.contains("invalid peer certificate") && line.contains(reason),
            "{dsn}: {line}"
        );
        assert_eq!(a.get("/healthz").map(|r| r.0), Some(200), "still up");
        assert_eq!(
            a.get("/readyz"),
            Some((503, "db_down\n".into())),
            "{}",
            a.stderr()
        );
        assert!(w.edges().is_empty(), "nothing written via {dsn}");
    }

    // Plain text is refused by the server for this role: a DB error, not a TLS one.
    clear(&w);
    let a = w.spawn(&[], &env_with(&w, url("127.0.0.1", "sslmode=disable")));
    a.wait_log("ERROR db: ", 20);
    assert!(w.edges().is_empty());
}

/// An unknown sslmode or an unreadable sslrootcert is a config error naming DATABASE_URL:
/// exit 2 before any network I/O, password never printed.
#[test]
fn bad_tls_options_exit_2() {
    let w = World::new(false);
    let junk = w.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem\n").unwrap();
    for (q, needle) in [
        (
            "sslmode=bogus".to_string(),
            "config DATABASE_URL: sslmode=bogus is not disable, allow, prefer, require, \
             verify-ca or verify-full"
                .to_string(),
        ),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem".to_string(),
            "config DATABASE_URL: sslrootcert /nonexistent/ca.pem: ".to_string(),
        ),
        (
            format!("sslmode=verify-ca&sslrootcert={}", junk.display()),
            format!("config DATABASE_URL: sslrootcert {}: ", junk.display()),
        ),
    ] {
        let mut env = w.env();
        env.insert(
            "DATABASE_URL".into(),
            format!("postgres://u:{PW}@127.0.0.1:1/goldmane_edges?{q}"),
        );
        for args in [&[][..], &["migrate"][..], &["check"][..]] {
            let (code, out, err) = run_once(w.dir.path(), args, &env, 10);
            assert_eq!(code, 2, "{q} {args:?}: {err}");
            assert!(out.is_empty(), "{out}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(&format!(" ERROR {needle}")), "{q}: {err}");
        }
    }
    assert_eq!(w.fake.connections(), 0, "no connection to Goldmane");
}
