//! One HTTP refresh: build the dialect's request, send it on the shared client, and read
//! the answer into a [`Grant`] or a classified [`RefreshError`]. No state, no retries.
//!
//! Headers follow the client each credential kind belongs to (§1 of the protocol notes):
//! OIDC requests look like the AWS SDK for Rust inside the Q CLI, with a fresh
//! invocation id per request; Kiro refreshes send plain JSON headers. Nothing per-account
//! is invented (no machine ids).

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::classify::{FailedResponse, classify_failure};
use crate::{AuthEndpoints, Credentials, RefreshError, RefreshOptions};

/// Token responses are a few hundred bytes; anything far larger is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// A month; guards the expiry arithmetic against absurd `expiresIn` values.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(30 * 24 * 3600);

const OIDC_SDK_VERSION: &str = "aws-sdk-rust/1.3.9";
const OIDC_LANG: &str = "lang/rust/1.87.0";
const KIRO_USER_AGENT: &str = "KiroIDE-0.11.107";

/// A successful refresh.
pub(crate) struct Grant {
    pub access_token: SecretString,
    pub expires_in: Duration,
    /// Present when the service rotated the refresh token.
    pub rotated_refresh_token: Option<SecretString>,
    pub profile_arn: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OidcRefreshBody<'a> {
    grant_type: &'static str,
    refresh_token: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KiroRefreshBody<'a> {
    refresh_token: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<SecretString>,
    #[serde(default)]
    expires_in: Option<f64>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    profile_arn: Option<String>,
}

/// Exchange `refresh_token` (the one in use, possibly rotated) for an access token.
pub(crate) async fn exchange(
    http: &reqwest::Client,
    endpoints: &AuthEndpoints,
    credentials: &Credentials,
    refresh_token: &SecretString,
    options: &RefreshOptions,
) -> Result<Grant, RefreshError> {
    let refresh = refresh_token.expose_secret();
    let (request, secrets) = match credentials {
        Credentials::Oidc {
            client_id,
            client_secret,
            ..
        } => {
            let body = OidcRefreshBody {
                grant_type: "refresh_token",
                refresh_token: refresh,
                client_id,
                client_secret: client_secret.expose_secret(),
            };
            let request = http
                .post(&endpoints.oidc_token_url)
                .headers(oidc_headers())
                .json(&body);
            (request, vec![refresh, client_secret.expose_secret()])
        }
        Credentials::KiroSocial { .. } => {
            let request = http
                .post(&endpoints.kiro_refresh_url)
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json, text/plain, */*")
                .header(USER_AGENT, KIRO_USER_AGENT)
                .json(&KiroRefreshBody {
                    refresh_token: refresh,
                });
            (request, vec![refresh])
        }
    };

    let response = request
        .timeout(options.timeout)
        .send()
        .await
        .map_err(|err| network_error(&err, options.timeout))?;
    let status = response.status().as_u16();
    let content_type = header_text(response.headers(), "content-type");
    let error_type = header_text(response.headers(), "x-amzn-errortype");
    let body = read_bounded(response)
        .await
        .map_err(|err| network_error(&err, options.timeout))?;

    if !(200..300).contains(&status) {
        return Err(classify_failure(
            &FailedResponse {
                status,
                content_type: content_type.as_deref(),
                error_type_header: error_type.as_deref(),
                body: &body,
            },
            &secrets,
        ));
    }
    parse_grant(status, &body, options)
}

fn oidc_headers() -> HeaderMap {
    let os = std::env::consts::OS;
    let mut headers = HeaderMap::new();
    let pairs = [
        ("content-type", "application/json".to_owned()),
        ("accept", "*/*".to_owned()),
        (
            "user-agent",
            format!("{OIDC_SDK_VERSION} os/{os} {OIDC_LANG}"),
        ),
        (
            "x-amz-user-agent",
            format!(
                "{OIDC_SDK_VERSION} ua/2.1 api/ssooidc/1.88.0 os/{os} {OIDC_LANG} m/E app/AmazonQ-For-CLI"
            ),
        ),
        ("amz-sdk-request", "attempt=1; max=3".to_owned()),
        // Fresh per request: a fixed id (the original's bug) makes every refresh look like
        // a retry of the same call.
        ("amz-sdk-invocation-id", uuid::Uuid::new_v4().to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    headers
}

fn parse_grant(status: u16, body: &[u8], options: &RefreshOptions) -> Result<Grant, RefreshError> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|_| {
        RefreshError::transient(Some(status), "token response is not the expected JSON")
    })?;
    let access_token = parsed
        .access_token
        .filter(|token| !token.expose_secret().is_empty())
        .ok_or_else(|| {
            RefreshError::transient(Some(status), "token response has no accessToken")
        })?;
    let expires_in = match parsed.expires_in {
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::from_secs_f64(seconds.min(MAX_EXPIRES_IN.as_secs_f64()))
        }
        _ => options.default_expires_in,
    };
    Ok(Grant {
        access_token,
        expires_in,
        rotated_refresh_token: parsed
            .refresh_token
            .filter(|token| !token.expose_secret().trim().is_empty()),
        profile_arn: parsed.profile_arn.filter(|arn| !arn.is_empty()),
    })
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(body)
}

/// Network failures carry no secrets, but their source chains can be long; keep the kind
/// and the innermost cause.
fn network_error(err: &reqwest::Error, timeout: Duration) -> RefreshError {
    if err.is_timeout() {
        return RefreshError::transient(None, format!("timed out after {timeout:?}"));
    }
    let kind = if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let cause: String = cause.to_string().chars().take(120).collect();
    RefreshError::transient(None, format!("{kind}: {cause}"))
}
