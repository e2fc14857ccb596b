//! Request translation end to end through the public API: real Claude Code bodies, and
//! generated conversations that must always come out acceptable to the service.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is the test failing

mod request_translate {
    pub mod fixtures;
    pub mod invariants;
    pub mod props;
}
