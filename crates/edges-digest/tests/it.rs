//! edges-digest integration tests: real Postgres 15 (testkit), the Slack stand-in, the
//! release-shaped binary. One binary; scenarios live in `it/`.

mod it {
    pub mod support;

    mod binary;
    mod delivery;
    mod failures;
    mod graph;
    mod policy;
    mod sides;
    mod tls;
    mod window;
}
