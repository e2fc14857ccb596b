//! `GET /getUsageLimits`: the cheap, bearer-authenticated call real clients (Kiro, Q) make
//! to show remaining requests, and the one a gateway's active health check uses. It passes
//! the same checks as chat — bearer token, then the account's injected faults — so a
//! probe sees exactly what the next chat request would; then it answers the service's
//! `usageBreakdownList` / `nextDateReset` / `subscriptionInfo` shape.

use crate::state::{BearerCheck, SimState, bump};
use crate::wire::ServiceError;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qgate_amazonq::Dialect;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;

/// Requests a simulated account may make per month.
const MONTHLY_LIMIT: u64 = 1000;

/// Query parameters of `GET /getUsageLimits`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageQuery {
    origin: Option<String>,
    resource_type: Option<String>,
    #[allow(dead_code)]
    profile_arn: Option<String>,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month) of a day count since the epoch.
fn year_month(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Midnight UTC on the 1st of the month after `now_unix`, as Unix seconds: when the
/// service resets monthly usage.
fn first_of_next_month_unix(now_unix: i64) -> i64 {
    let (year, month) = year_month(now_unix.div_euclid(86_400));
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(year, month, 1) * 86_400
}

pub(crate) async fn get_usage_limits(
    State(state): State<SimState>,
    Query(query): Query<UsageQuery>,
    headers: HeaderMap,
) -> Response {
    // The usage endpoint speaks REST-JSON, like the Kiro chat dialect.
    let dialect = Dialect::Kiro;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let account = match token.map(|t| state.check_bearer(t)) {
        Some(BearerCheck::Valid(account)) => account,
        Some(BearerCheck::Expired(account)) => {
            bump(&account.counters.usage_checks);
            return ServiceError::bearer_expired().into_response_for(dialect);
        }
        Some(BearerCheck::Unknown) | None => {
            return ServiceError::bearer_invalid().into_response_for(dialect);
        }
    };
    bump(&account.counters.usage_checks);
    if let Some(fault) = state.fire_fault(&account, false)
        && let Some(error) = ServiceError::for_fault(fault.kind, &account.name)
    {
        return error.into_response_for(dialect);
    }
    if query.origin.is_none() || query.resource_type.is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "__type": "com.amazon.aws.codewhisperer#ValidationException",
                "message": "origin and resourceType are required",
            })),
        )
            .into_response();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let reset = first_of_next_month_unix(now);
    let used = account.counters.chat_ok.load(Ordering::Relaxed);
    Json(json!({
        "daysUntilReset": (reset - now) / 86_400,
        "nextDateReset": reset,
        "subscriptionInfo": {
            "subscriptionTitle": "Q Developer Pro (simulated)",
            "type": "Q_DEVELOPER_STANDALONE_PRO",
        },
        "usageBreakdownList": [{
            "resourceType": query.resource_type,
            "currency": "USD",
            "unit": "INVOCATIONS",
            "currentUsage": used,
            "currentUsageWithPrecision": used as f64,
            "usageLimit": MONTHLY_LIMIT,
            "usageLimitWithPrecision": MONTHLY_LIMIT as f64,
            "nextDateReset": reset,
            "bonuses": [],
        }],
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::first_of_next_month_unix;

    #[test]
    fn resets_on_the_first_of_the_next_month_utc() {
        // 2023-11-14T22:13:20Z -> 2023-12-01T00:00:00Z
        assert_eq!(first_of_next_month_unix(1_700_000_000), 1_701_388_800);
        // 2024-12-31T23:59:59Z -> 2025-01-01T00:00:00Z
        assert_eq!(first_of_next_month_unix(1_735_689_599), 1_735_689_600);
        // 2024-02-10 -> 2024-03-01 (leap year)
        assert_eq!(first_of_next_month_unix(1_707_523_200), 1_709_251_200);
    }
}
