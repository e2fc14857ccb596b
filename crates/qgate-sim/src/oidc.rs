//! The token services: AWS SSO-OIDC (`/token` for refresh and device-code grants,
//! `/client/register`, `/device_authorization`) and Kiro's social-login `/refreshToken`.
//!
//! Bodies are camelCase JSON as the real services use. Errors are OAuth-style: an unknown,
//! rotated-away or revoked refresh token is `invalid_grant`, a client id/secret that does
//! not belong to the token's account is `invalid_client`, a missing field is
//! `invalid_request`.

use crate::fault::FaultKind;
use crate::state::{Account, DevicePoll, SimState, bump};
use crate::wire::OidcError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REFRESH_GRANT: &str = "refresh_token";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Registered clients' secrets "expire" after this, as AWS's do (90 days).
const CLIENT_SECRET_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TokenRequest {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    device_code: Option<String>,
}

/// A present, non-empty field, or `invalid_request` naming it.
fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OidcError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) | None => Err(OidcError::missing(name)),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, OidcError> {
    serde_json::from_slice(body)
        .map_err(|_| OidcError::InvalidRequest("Malformed request body".to_owned()))
}

/// Either outcome as a response.
fn respond(outcome: Result<Response, OidcError>) -> Response {
    outcome.unwrap_or_else(IntoResponse::into_response)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `POST /token`.
pub(crate) async fn create_token(State(state): State<SimState>, body: Bytes) -> Response {
    respond(
        parse::<TokenRequest>(&body).and_then(|request| match request.grant_type.as_deref() {
            Some(REFRESH_GRANT) => refresh_grant(&state, &request),
            Some(DEVICE_GRANT) => device_grant(&state, &request),
            Some(_) => Err(OidcError::UnsupportedGrantType),
            None => Err(OidcError::missing("grantType")),
        }),
    )
}

fn refresh_grant(state: &SimState, request: &TokenRequest) -> Result<Response, OidcError> {
    let refresh_token = required(&request.refresh_token, "refreshToken")?;
    let client_id = required(&request.client_id, "clientId")?;
    let client_secret = required(&request.client_secret, "clientSecret")?;
    let Some(account) = state.account_of_refresh_token(refresh_token) else {
        if !state.client_known(client_id, client_secret) {
            return Err(OidcError::InvalidClient);
        }
        // A token we never issued, presented by a known client: that client's account
        // has a refresh problem, and its counters should show it.
        if let Some(account) = state.account_of_client(client_id) {
            bump(&account.counters.refresh_failures);
        }
        return Err(OidcError::InvalidRefreshToken);
    };
    if !account.client_matches(client_id, client_secret) {
        bump(&account.counters.refresh_failures);
        return Err(OidcError::InvalidClient);
    }
    let refresh_token = redeem(state, &account, refresh_token)?;
    let access_token = state.issue_access_token(&account);
    let mut body = json!({
        "accessToken": access_token,
        "tokenType": "Bearer",
        "expiresIn": state.config().token_ttl.as_secs(),
    });
    // AWS returns a refresh token only when it rotated it.
    if state.config().rotate_refresh_tokens {
        body["refreshToken"] = json!(refresh_token);
    }
    Ok(Json(body).into_response())
}

/// Applies refresh faults, then exchanges the token; counts the outcome.
fn redeem(state: &SimState, account: &Arc<Account>, presented: &str) -> Result<String, OidcError> {
    if let Some(fault) = state.fire_fault(account, true) {
        bump(&account.counters.refresh_failures);
        return Err(match fault.kind {
            FaultKind::Refresh5xx => OidcError::ServerError,
            FaultKind::RefreshInvalidGrant
            | FaultKind::Throttle
            | FaultKind::MonthlyQuota
            | FaultKind::Quota402
            | FaultKind::Suspended
            | FaultKind::ExpiredToken
            | FaultKind::InvalidModel
            | FaultKind::Overloaded
            | FaultKind::Unavailable
            | FaultKind::SlowFirstByte
            | FaultKind::MidstreamException
            | FaultKind::MidstreamReset
            | FaultKind::BadCrc => OidcError::InvalidRefreshToken,
        });
    }
    match account.redeem(presented, state.config().rotate_refresh_tokens) {
        Some(token) => {
            bump(&account.counters.token_refreshes);
            Ok(token)
        }
        None => {
            bump(&account.counters.refresh_failures);
            Err(OidcError::InvalidRefreshToken)
        }
    }
}

fn device_grant(state: &SimState, request: &TokenRequest) -> Result<Response, OidcError> {
    let client_id = required(&request.client_id, "clientId")?;
    let client_secret = required(&request.client_secret, "clientSecret")?;
    let device_code = required(&request.device_code, "deviceCode")?;
    if !state.client_known(client_id, client_secret) {
        return Err(OidcError::InvalidClient);
    }
    match state.poll_device(device_code, client_id, client_secret) {
        DevicePoll::Pending => Err(OidcError::AuthorizationPending),
        DevicePoll::Invalid => Err(OidcError::InvalidDeviceCode),
        DevicePoll::Approved(account) => Ok(Json(json!({
            "accessToken": state.issue_access_token(&account),
            "tokenType": "Bearer",
            "expiresIn": state.config().token_ttl.as_secs(),
            "refreshToken": account.current_refresh_token(),
        }))
        .into_response()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterRequest {
    client_name: Option<String>,
    client_type: Option<String>,
}

/// `POST /client/register`.
pub(crate) async fn register_client(State(state): State<SimState>, body: Bytes) -> Response {
    respond(parse::<RegisterRequest>(&body).and_then(|request| {
        required(&request.client_name, "clientName")?;
        required(&request.client_type, "clientType")?;
        let (client_id, client_secret) = state.register_client();
        let now = unix_now();
        Ok(Json(json!({
            "clientId": client_id,
            "clientSecret": client_secret,
            "clientIdIssuedAt": now,
            "clientSecretExpiresAt": now + CLIENT_SECRET_LIFETIME.as_secs(),
        }))
        .into_response())
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceAuthorizationRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    start_url: Option<String>,
}

/// `POST /device_authorization`.
pub(crate) async fn device_authorization(State(state): State<SimState>, body: Bytes) -> Response {
    respond(
        parse::<DeviceAuthorizationRequest>(&body).and_then(|request| {
            let client_id = required(&request.client_id, "clientId")?;
            let client_secret = required(&request.client_secret, "clientSecret")?;
            required(&request.start_url, "startUrl")?;
            if !state.client_known(client_id, client_secret) {
                return Err(OidcError::InvalidClient);
            }
            let device_code = state.start_device_authorization(client_id);
            let user_code = format!("SIM{}", &device_code[device_code.len() - 5..]).to_uppercase();
            let verification_uri = "https://device.sso.us-east-1.amazonaws.com/";
            Ok(Json(json!({
                "deviceCode": device_code,
                "userCode": user_code,
                "verificationUri": verification_uri,
                "verificationUriComplete": format!("{verification_uri}?user_code={user_code}"),
                "interval": 1,
                "expiresIn": 600,
            }))
            .into_response())
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KiroRefreshRequest {
    refresh_token: Option<String>,
}

/// `POST /refreshToken` (Kiro social login): no client credentials, and the answer always
/// carries a refresh token (the same one unless rotation is on) and the profile ARN.
pub(crate) async fn kiro_refresh(State(state): State<SimState>, body: Bytes) -> Response {
    respond(parse::<KiroRefreshRequest>(&body).and_then(|request| {
        let presented = required(&request.refresh_token, "refreshToken")?;
        let account = state
            .account_of_refresh_token(presented)
            .ok_or(OidcError::InvalidRefreshToken)?;
        let refresh_token = redeem(&state, &account, presented)?;
        Ok(Json(json!({
            "accessToken": state.issue_access_token(&account),
            "refreshToken": refresh_token,
            "profileArn": account.profile_arn,
            "expiresIn": state.config().token_ttl.as_secs(),
        }))
        .into_response())
    }))
}
