//! Integration tests: the built binary against a real Postgres (testkit `Postgres`) and the
//! testkit's fake Goldmane (full upstream proto, real mutual TLS from a throwaway rcgen CA).

mod it {
    mod common;
    mod config;
    mod db;
    mod field;
    mod pgtls;
    mod stream;
    mod tls;
}
