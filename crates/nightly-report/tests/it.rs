//! The one integration-test binary of nightly-report (spec §11.3): real Pushgateway, the
//! HTTPS Kubernetes API fixture, the Slack stand-in, the built binary.

mod it {
    mod common;
    mod config;
    mod fake_pushgateway;
    mod gate;
    mod kube;
    mod nights;
    mod outputs;
    mod pushgateway;
    mod slack;
}
