//! What an account refreshes with ([`Credentials`]) and where ([`AuthEndpoints`]).

use secrecy::SecretString;

/// Long-lived credentials of one account. `Debug` shows the client id but never a secret.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// AWS SSO OIDC (Builder ID / IAM Identity Center): the `refresh_token` grant of
    /// `CreateToken`, authenticated by the registered client.
    Oidc {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
    },
    /// Kiro social login (Google/GitHub): the refresh token alone.
    KiroSocial { refresh_token: SecretString },
}

impl Credentials {
    /// The refresh token the operator configured (before any rotation).
    pub fn refresh_token(&self) -> &SecretString {
        match self {
            Credentials::Oidc { refresh_token, .. } | Credentials::KiroSocial { refresh_token } => {
                refresh_token
            }
        }
    }

    /// `"oidc"` or `"kiro_social"`, for logs and admin views.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Oidc { .. } => "oidc",
            Credentials::KiroSocial { .. } => "kiro_social",
        }
    }
}

/// Token endpoints. Shared by all accounts of a gateway (tests and the simulator point
/// them at loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEndpoints {
    /// AWS SSO OIDC `CreateToken` (`AMAZONQ_TOKEN_ENDPOINT` in the original gateway).
    pub oidc_token_url: String,
    /// Kiro social-login refresh.
    pub kiro_refresh_url: String,
}

impl AuthEndpoints {
    /// Builder ID always lives in us-east-1, and so does the Kiro auth service.
    pub fn aws_defaults() -> Self {
        AuthEndpoints {
            oidc_token_url: "https://oidc.us-east-1.amazonaws.com/token".to_owned(),
            kiro_refresh_url: "https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken"
                .to_owned(),
        }
    }
}

impl Default for AuthEndpoints {
    fn default() -> Self {
        Self::aws_defaults()
    }
}
