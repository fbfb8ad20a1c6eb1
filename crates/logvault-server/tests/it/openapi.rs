//! `GET /v1/openapi.json`: an OpenAPI 3.1 document that lists every route the API router
//! registers (read from `src/api/mod.rs` itself, not from a second list), documents every
//! error as `application/problem+json`, and lists every problem type the server answers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Who, World};

/// The API router's source: the routes it registers are read from it.
const API_ROUTER: &str = include_str!("../../src/api/mod.rs");
/// The problem catalogue's source, for the slugs it declares.
const PROBLEMS: &str = include_str!("../../src/problem.rs");

/// Every `(method, path)` that `router()` in `src/api/mod.rs` registers: each
/// `.route("PATH", get(..).post(..))` with the methods of its method router.
fn registered_routes() -> BTreeSet<(String, String)> {
    let body = API_ROUTER
        .split("fn router()")
        .nth(1)
        .expect("src/api/mod.rs defines router()");
    let body = body.split("\n}").next().unwrap_or(body);
    let mut routes = BTreeSet::new();
    for chunk in body.split(".route(").skip(1) {
        let path = chunk
            .split('"')
            .nth(1)
            .expect("a route's first argument is its path");
        let methods = chunk.split('"').skip(2).collect::<Vec<_>>().join("\"");
        let mut found = false;
        for method in ["get", "post", "put", "delete", "patch"] {
            let token = format!("{method}(");
            let calls = methods.match_indices(&token).any(|(at, _)| {
                at == 0
                    || !methods.as_bytes()[at - 1].is_ascii_alphanumeric()
                        && methods.as_bytes()[at - 1] != b'_'
            });
            if calls {
                routes.insert((method.to_string(), path.to_string()));
                found = true;
            }
        }
        assert!(found, "no method found for route {path}");
    }
    routes
}

#[test]
fn the_route_reader_reads_the_router() {
    let routes = registered_routes();
    for expected in [
        ("get", "/v1/audit-events"),
        ("post", "/v1/audit-events"),
        ("delete", "/v1/retention/{account_id}/hold"),
    ] {
        let expected = (expected.0.to_string(), expected.1.to_string());
        assert!(routes.contains(&expected), "{expected:?} in {routes:?}");
    }
    assert!(routes.len() >= 17, "{routes:?}");
}

async fn document() -> Value {
    let world = World::new().await;
    // The document is public: a client needs it before it holds a key.
    let reply = world.get(Who::Anonymous, "/v1/openapi.json").await;
    reply.assert_status(200);
    assert!(
        reply.content_type().starts_with("application/json"),
        "{}",
        reply.content_type()
    );
    reply.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_openapi_3_1_with_every_registered_route() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item");
            item.keys()
                .filter(|key| ["get", "post", "put", "delete", "patch"].contains(&key.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let registered = registered_routes();
    let missing: Vec<_> = registered.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(
        extra.is_empty(),
        "documented routes the router lacks: {extra:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_a_documented_problem() {
    let doc = document().await;
    let bearer = &doc["components"]["securitySchemes"]["api_key"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(bearer["scheme"], "bearer", "{bearer}");
    let problem = &doc["components"]["responses"]["Problem"]["content"]["application/problem+json"];
    assert_eq!(
        problem["schema"]["$ref"], "#/components/schemas/ProblemDetails",
        "{problem}"
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let responses = operation["responses"].as_object().expect("responses");
            for (status, response) in responses {
                let status: u16 = status.parse().expect("numeric status");
                if status < 400 {
                    continue;
                }
                // OTLP/HTTP answers failures with its own `google.rpc.Status`.
                let expected = if path == "/v1/logs" {
                    response["content"]["application/json"]["schema"]["$ref"]
                        == "#/components/schemas/Status"
                } else {
                    response["$ref"] == "#/components/responses/Problem"
                        || response["content"]["application/problem+json"].is_object()
                };
                assert!(expected, "{method} {path} {status}: {response}");
            }
            let public = path == "/v1/openapi.json";
            for status in ["401", "429"] {
                assert_eq!(
                    responses.contains_key(status),
                    !public,
                    "{method} {path} documents {status}"
                );
            }
            assert!(
                responses.contains_key("500"),
                "{method} {path} documents 500"
            );
        }
    }
}

/// `x-problem-types` lists every slug `problem.rs` declares, each with its status, and the
/// `type` of `ProblemDetails` takes exactly those URIs; a problem the server really answers
/// is among them.
#[tokio::test(flavor = "multi_thread")]
async fn the_problem_types_are_listed_with_their_statuses() {
    let doc = document().await;
    let catalogue = doc["x-problem-types"].as_array().expect("x-problem-types");
    let listed: BTreeSet<String> = catalogue
        .iter()
        .map(|entry| {
            let status = entry["status"].as_u64().expect("status");
            assert!((400..600).contains(&status), "{entry}");
            assert!(
                entry["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{entry}"
            );
            entry["type"].as_str().expect("type").to_string()
        })
        .collect();
    let declared: BTreeSet<String> = PROBLEMS
        .lines()
        .filter_map(|line| line.split_once("=> ("))
        .filter_map(|(_, rest)| rest.split('"').nth(1))
        .map(|slug| format!("urn:logvault:problem:{slug}"))
        .collect();
    assert!(declared.len() >= 20, "{declared:?}");
    assert_eq!(listed, declared);
    let enumerated: BTreeSet<String> = doc["components"]["schemas"]["ProblemDetails"]["properties"]
        ["type"]["enum"]
        .as_array()
        .expect("type enum")
        .iter()
        .map(|uri| uri.as_str().expect("uri").to_string())
        .collect();
    assert_eq!(enumerated, listed);

    let world = World::new().await;
    let reply = world.get(Who::MerchantA1, "/v1/audit-events?limit=0").await;
    let answered = reply.json()["type"].as_str().expect("type").to_string();
    assert!(listed.contains(&answered), "{answered}");
}

/// Query parameters carry their real bounds, and each kind lists only its own filters.
#[tokio::test(flavor = "multi_thread")]
async fn query_parameters_have_their_bounds() {
    let doc = document().await;
    let parameters = |path: &str| -> Vec<Value> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} parameters"))
            .clone()
    };
    let names = |path: &str| -> BTreeSet<String> {
        parameters(path)
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_string())
            .collect()
    };
    let limit = parameters("/v1/audit-events")
        .into_iter()
        .find(|p| p["name"] == "limit")
        .expect("limit");
    assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
    assert_eq!(limit["schema"]["maximum"], 1000, "{limit}");
    assert!(names("/v1/audit-events").contains("actor_id"));
    assert!(!names("/v1/audit-events").contains("error_type"));
    assert!(names("/v1/threat-events").contains("error_type"));
    assert!(!names("/v1/threat-events").contains("ip"));
    let export = names("/v1/threat-events/export");
    assert!(
        export.contains("format") && !export.contains("limit"),
        "{export:?}"
    );
}
