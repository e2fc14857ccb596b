//! Simulator configuration and the fixed credentials of its accounts.
//!
//! Account *i* (1-based) is `sim-i` with refresh token `sim-refresh-i`, client id
//! `sim-client-i`, client secret `sim-secret-i` and profile ARN
//! `arn:aws:codewhisperer:us-east-1:000000000000:profile/SIMi`, so tests and the demo
//! can write the gateway's account file without asking the simulator.

use crate::fault::FaultSpec;
use qgate_amazonq::validate::Limits;
use std::fmt;
use std::time::Duration;

/// How a simulator instance behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Accounts `sim-1` … `sim-N` that exist from the start.
    pub accounts: usize,
    /// Lifetime of issued access tokens (`expiresIn`).
    pub token_ttl: Duration,
    /// Whether a refresh returns a new refresh token and revokes the old one.
    pub rotate_refresh_tokens: bool,
    /// The service's request limits the validator enforces.
    pub limits: Limits,
    /// Faults active from the start.
    pub faults: Vec<FaultSpec>,
    /// A reply asked for more words than this stops after this many with a
    /// `ContentLengthExceededException` frame (the service's output budget).
    pub max_output_words: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            accounts: 3,
            token_ttl: Duration::from_secs(3600),
            rotate_refresh_tokens: false,
            limits: Limits::default(),
            faults: Vec::new(),
            max_output_words: 2000,
        }
    }
}

/// What a client needs to use simulated account `index` (1-based).
#[derive(Clone, PartialEq, Eq)]
pub struct SimCredentials {
    pub account: String,
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    pub profile_arn: String,
}

// Even simulated secrets stay out of logs: tests print Debug output of configs that carry
// them, and a habit of redacting is cheaper than a rule with exceptions.
impl fmt::Debug for SimCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCredentials")
            .field("account", &self.account)
            .field("refresh_token", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("profile_arn", &self.profile_arn)
            .finish()
    }
}

/// The credentials of the account with 1-based `index`.
pub fn credentials(index: usize) -> SimCredentials {
    SimCredentials {
        account: format!("sim-{index}"),
        refresh_token: format!("sim-refresh-{index}"),
        client_id: format!("sim-client-{index}"),
        client_secret: format!("sim-secret-{index}"),
        profile_arn: format!("arn:aws:codewhisperer:us-east-1:000000000000:profile/SIM{index}"),
    }
}

impl SimConfig {
    /// Credentials of the accounts that exist from the start.
    pub fn credentials(&self) -> Vec<SimCredentials> {
        (1..=self.accounts).map(credentials).collect()
    }
}
