//! [`RefreshError`], the one error of the refresh boundary, and how it classifies itself.
//!
//! The pool reacts only to [`RefreshError::is_permanent`]: permanent means the account's
//! credentials are dead (mark it `refresh_denied`, never retry until an operator gives new
//! ones); everything else is the network's or the service's fault and may heal by itself.

/// Why an account could not get an access token. Display never includes secrets: upstream
/// bodies are reduced to the OAuth `error` code and a short, redacted description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The token service refused these credentials (`invalid_grant`, `invalid_client`,
    /// `unauthorized_client`, `access_denied` with 400/401). Retrying cannot help.
    #[error("token refresh denied ({code}); the account needs new credentials")]
    Denied { code: String },
    /// 429, 5xx, network errors, timeouts, bodies we cannot understand.
    #[error("{}", transient_message(*status, detail))]
    Transient { status: Option<u16>, detail: String },
}

fn transient_message(status: Option<u16>, detail: &str) -> String {
    match status {
        Some(status) => format!("token refresh failed temporarily (HTTP {status}): {detail}"),
        None => format!("token refresh failed temporarily (no response): {detail}"),
    }
}

impl RefreshError {
    /// True when retrying with the same credentials is pointless.
    pub fn is_permanent(&self) -> bool {
        match self {
            RefreshError::Denied { .. } => true,
            RefreshError::Transient { .. } => false,
        }
    }

    /// A short, bounded label for metrics and admin views: the OAuth code when denied,
    /// otherwise `network`, `throttled`, `server_error`, `bad_response` or `http_error`.
    pub fn code(&self) -> &str {
        match self {
            RefreshError::Denied { code } => code,
            RefreshError::Transient { status, .. } => match status {
                None => "network",
                Some(429) => "throttled",
                Some(500..=599) => "server_error",
                Some(200..=299) => "bad_response",
                Some(_) => "http_error",
            },
        }
    }

    pub(crate) fn transient(status: Option<u16>, detail: impl Into<String>) -> Self {
        RefreshError::Transient {
            status,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_denied_is_permanent() {
        assert!(
            RefreshError::Denied {
                code: "invalid_grant".into()
            }
            .is_permanent()
        );
        assert!(!RefreshError::transient(Some(500), "x").is_permanent());
        assert!(!RefreshError::transient(None, "x").is_permanent());
    }

    #[test]
    fn codes_are_bounded_labels() {
        let code = |status| RefreshError::transient(status, "x").code().to_owned();
        assert_eq!(code(None), "network");
        assert_eq!(code(Some(429)), "throttled");
        assert_eq!(code(Some(502)), "server_error");
        assert_eq!(code(Some(200)), "bad_response");
        assert_eq!(code(Some(404)), "http_error");
    }

    #[test]
    fn display_names_status_and_detail() {
        let shown = RefreshError::transient(Some(503), "service unavailable").to_string();
        assert!(shown.contains("503") && shown.contains("service unavailable"));
    }
}
