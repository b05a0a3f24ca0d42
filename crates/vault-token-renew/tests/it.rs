//! The one integration-test binary of vault-token-renew: the real binary against a real
//! OpenBao dev server and, for what OpenBao cannot do, a scripted loopback server.

mod it {
    mod badinput;
    mod common;
    mod openbao;
    mod realhost;
    mod scripted;
}
