//! Integration tests of t3-migrate-idle: real SQLite files read and backed up as a throwaway
//! system user, a loopback t3-dispatch stand-in, recording fakes for systemctl/t3/npm.
//! Tests run as root (they create and remove users with useradd/userdel).

mod it {
    pub mod binary;
    pub mod common;
    pub mod drain;
    pub mod fakecmd;
    pub mod gate;
    pub mod realhost;
    pub mod restart;
}
