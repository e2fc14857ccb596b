//! The one mapping from a classified upstream failure to the pool outcome it causes.

use qgate_amazonq::classify::UpstreamFailure;
use qgate_pool::Outcome;

/// What the pool is told about a failed attempt. Client faults and global overload
/// never count against the account's health.
pub fn pool_outcome(failure: &UpstreamFailure, upstream_model: &str) -> Outcome {
    match failure {
        UpstreamFailure::Client(_) => Outcome::ClientError,
        UpstreamFailure::Token => Outcome::Token,
        UpstreamFailure::Throttled { retry_after } => Outcome::Throttled {
            retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
        },
        UpstreamFailure::QuotaExhausted { reset_at_unix } => Outcome::QuotaExhausted {
            reset_at_ms: reset_at_unix
                .and_then(|s| u64::try_from(s).ok())
                .map(|s| s * 1000),
        },
        UpstreamFailure::Suspended => Outcome::Suspended,
        UpstreamFailure::ModelUnavailable => Outcome::ModelUnavailable {
            model: upstream_model.to_owned(),
        },
        UpstreamFailure::Overloaded => Outcome::Overloaded {
            model: upstream_model.to_owned(),
        },
        UpstreamFailure::Transient { .. } => Outcome::Transient,
    }
}
