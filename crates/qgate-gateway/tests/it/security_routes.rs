//! Nobody gets in without the right key, on any route: every admin route (enumerated from
//! the OpenAPI document, so a new route cannot be forgotten) and every client route refuse
//! a missing key, a wrong key, near misses of the right one, the other role's key, and
//! the right key in the wrong place; without an admin key every change is refused; and
//! path spellings do not route around the check. Refusals change nothing.

use crate::admin::ADMIN;
use crate::hostile::{assert_anthropic_error, upstream_calls};
use crate::support::*;
use reqwest::Method;
use serde_json::{Value, json};

const CLIENT_KEY: &str = "client-key-for-route-tests";

/// Routes that answer without any key, by design: the public probes.
const PUBLIC: &[(&str, &str)] = &[("get", "/health")];

/// The client API, which the admin document does not describe.
const CLIENT_ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/messages"),
    ("post", "/v1/messages/count_tokens"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{id}"),
];

fn keyed() -> Opts {
    Opts::accounts(2)
        .env("API_KEYS", CLIENT_KEY)
        .env("ADMIN_API_KEY", ADMIN)
}

/// Every operation of the OpenAPI document: (method, path template).
async fn documented_routes(env: &TestEnv) -> Vec<(String, String)> {
    let doc: Value = env
        .http
        .get(env.url("/admin/openapi.json"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routes = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            routes.push((method.clone(), path.clone()));
        }
    }
    assert!(routes.len() >= 15, "{routes:?}");
    routes
}

/// A model id `/v1/models` lists.
const MODEL: &str = "claude-sonnet-4-5-20250929";

/// A concrete URL for a template: a real account and model, so only the credential
/// stands between the caller and the handler.
fn concrete(path: &str) -> String {
    path.replace(
        "{id}",
        if path.starts_with("/v1/models") {
            MODEL
        } else {
            "sim-1"
        },
    )
}

fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("post", "/v1/messages" | "/v1/messages/count_tokens") => Some(hello("x")),
        ("post", "/accounts") => Some(json!({"id": "intruder", "refresh_token": "r",
            "client_id": "c", "client_secret": "s"})),
        ("patch", _) => Some(json!({"weight": 99})),
        _ => None,
    }
}

/// How a caller may present a credential.
#[derive(Debug, Clone)]
enum Presented {
    Nothing,
    Bearer(String),
    AdminHeader(String),
    ApiKeyHeader(String),
    Basic(String),
    Query(String),
}

async fn call(env: &TestEnv, method: &str, path: &str, how: &Presented) -> (u16, Value) {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut url = env.url(&concrete(path));
    if let Presented::Query(k) = how {
        url.push_str(&format!("?key={k}&api_key={k}&x-api-key={k}"));
    }
    let mut r = env.http.request(m, &url);
    match how {
        Presented::Nothing | Presented::Query(_) => {}
        Presented::Bearer(k) => r = r.bearer_auth(k),
        Presented::AdminHeader(k) => r = r.header("x-admin-key", k),
        Presented::ApiKeyHeader(k) => r = r.header("x-api-key", k),
        Presented::Basic(k) => r = r.basic_auth(k, Some(k)),
    }
    if let Some(body) = body_for(method, path) {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Wrong ways to call a route whose key is `right`, where `other` is the other role's key
/// and `misplaced` is the right key in a header this route does not read.
fn wrong_ways(right: &str, other: &str, misplaced: fn(String) -> Presented) -> Vec<Presented> {
    let mut ways = vec![
        Presented::Nothing,
        Presented::Bearer(other.to_owned()),
        Presented::AdminHeader(other.to_owned()),
        Presented::ApiKeyHeader(other.to_owned()),
        Presented::Basic(right.to_owned()),
        Presented::Query(right.to_owned()),
        misplaced(right.to_owned()),
    ];
    let near_misses = [
        String::new(),
        "wrong".to_owned(),
        right[..right.len() - 1].to_owned(),
        format!("{right}x"),
        format!("x{right}"),
        right.to_uppercase(),
    ];
    for key in near_misses {
        ways.extend([
            Presented::Bearer(key.clone()),
            Presented::AdminHeader(key.clone()),
            Presented::ApiKeyHeader(key),
        ]);
    }
    ways
}

#[tokio::test]
async fn every_route_refuses_missing_wrong_and_misplaced_keys() {
    let env = TestEnv::start(keyed()).await;
    let mut routes = documented_routes(&env).await;
    for (method, path) in PUBLIC {
        assert!(
            routes.contains(&(method.to_string(), path.to_string())),
            "{path} is documented"
        );
    }
    routes.retain(|(m, p)| !PUBLIC.contains(&(m.as_str(), p.as_str())));
    let admin_routes = routes.len();
    routes.extend(
        CLIENT_ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string())),
    );
    let before = upstream_calls(&env).await;
    let mut refusals = 0;
    for (i, (method, path)) in routes.iter().enumerate() {
        let ways = if i < admin_routes {
            wrong_ways(ADMIN, CLIENT_KEY, Presented::ApiKeyHeader)
        } else {
            wrong_ways(CLIENT_KEY, ADMIN, Presented::AdminHeader)
        };
        for how in ways {
            let (status, v) = call(&env, method, path, &how).await;
            assert_eq!(status, 401, "{method} {path} with {how:?}: {v}");
            assert_anthropic_error(&v, "authentication_error", &format!("{method} {path}"));
            refusals += 1;
        }
    }
    assert!(refusals > 300, "{refusals}");
    // Nothing happened: no upstream call, no account changed, nobody added.
    assert_eq!(upstream_calls(&env).await, before);
    let accounts = crate::admin::admin_get(&env, "/accounts").await;
    let ids: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sim-1", "sim-2"]);
    for a in accounts.as_array().unwrap() {
        assert_eq!(
            (a["enabled"].as_bool(), a["weight"].as_u64()),
            (Some(true), Some(10)),
            "{a}"
        );
    }
    // The right keys do open the read routes (the refusals were about the key).
    for (method, path) in routes.iter().filter(|(m, _)| m == "get") {
        let right = if path.starts_with("/v1/") {
            CLIENT_KEY
        } else {
            ADMIN
        };
        let (status, v) = call(&env, method, path, &Presented::Bearer(right.to_owned())).await;
        assert_eq!(status, 200, "{method} {path} with the right key: {v}");
    }
}

#[tokio::test]
async fn without_an_admin_key_every_change_is_refused() {
    let env = TestEnv::start(Opts::accounts(2)).await;
    let routes = documented_routes(&env).await;
    let changes: Vec<&(String, String)> = routes.iter().filter(|(m, _)| m != "get").collect();
    assert!(changes.len() >= 9, "{changes:?}");
    for (method, path) in changes {
        for how in [
            Presented::Nothing,
            Presented::Bearer("anything".to_owned()),
            Presented::AdminHeader("anything".to_owned()),
        ] {
            let (status, v) = call(&env, method, path, &how).await;
            assert_eq!(status, 403, "{method} {path} with {how:?}: {v}");
            assert_anthropic_error(&v, "permission_error", path);
        }
    }
    let (_, account) = env.get("/accounts/sim-1").await;
    assert_eq!(account["enabled"], true);
    assert_eq!(account["weight"], 10);
}

#[tokio::test]
async fn path_spellings_do_not_route_around_the_check() {
    let env = TestEnv::start(keyed()).await;
    for path in [
        "/accounts/stats/",
        "//accounts/stats",
        "/accounts//stats",
        "/accounts/./stats",
        "/accounts/../accounts/stats",
        "/accounts/%73tats",
        "/%61ccounts/stats",
        "/ACCOUNTS/stats",
        "/accounts/stats;x",
        "/accounts/sim-1/",
        "/accounts/sim-1%2Fenable",
        "/admin/keys/",
        "/admin//keys",
        "/metrics/",
        "/v1/models/",
        "/v1//models",
        "/v1/./models",
        "/v1/%6dodels",
        "/V1/models",
    ] {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let r = env
                .http
                .request(method.clone(), format!("{}{path}", env.base))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            assert!(
                matches!(status, 400 | 401 | 404 | 405),
                "{method} {path}: {status} {body}"
            );
            assert!(
                !body.contains("sim-refresh") && !body.contains("\"accounts\""),
                "{method} {path} leaked: {body}"
            );
        }
    }
}
