//! The /api/v1 surface: health, bad input answered with the envelope naming the field,
//! the API key, bars as JSON and Arrow, metrics.

use api_gateway::GatewayConfig;
use api_gateway::gateway::Gateway;
use serde_json::{Value, json};

use crate::support::{Dirs, Running, eventually, gateway, get, http, post};

/// A gateway on a copy of the sample store that requires `key`.
async fn keyed(key: &str) -> (Dirs, Running, Gateway) {
    let dirs = Dirs::sample();
    let config = GatewayConfig {
        api_key: Some(key.into()),
        ..GatewayConfig::default()
    };
    let (gw, gateway) = gateway(dirs.settings(config)).await;
    (dirs, gw, gateway)
}

fn assert_error(status: u16, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn health_reports_both_services_in_process() {
    let dirs = Dirs::sample().with_ib().await;
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    // The in-process IB provider connects to the simulator in the background.
    let body = eventually("both services healthy", || async {
        let (status, body) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
        assert_eq!(status, 200, "{body}");
        (body["status"] == "healthy").then_some(body)
    })
    .await;
    assert!(body["version"].is_string());
    for service in ["data", "training"] {
        assert_eq!(body["services"][service]["mode"], "local", "{body}");
        assert_eq!(body["services"][service]["healthy"], true, "{body}");
        // Measured, not a constant 0.
        assert!(
            body["services"][service]["latency_ms"]
                .as_f64()
                .is_some_and(|ms| ms > 0.0),
            "{body}"
        );
    }
    assert_eq!(body["services"]["training"]["details"]["device"], "cpu");
    assert_eq!(
        body["services"]["data"]["details"]["provider"]["connected"],
        true
    );
    // The scaffold's liveness route is there too, for container healthchecks.
    let (status, live) = get(&http(), &format!("{}/health", gw.base)).await;
    assert_eq!((status, &live["healthy"]), (200, &json!(true)), "{live}");
}

#[tokio::test]
async fn health_says_the_in_process_ib_link_is_down_and_what_still_works() {
    // No IB Gateway at the configured address (127.0.0.1:9).
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let body = eventually("the first connection attempt to fail", || async {
        let (_, body) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
        body["services"]["data"]["error"]
            .is_string()
            .then_some(body)
    })
    .await;
    let data = &body["services"]["data"];
    assert_eq!(data["healthy"], false, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    let error = data["error"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1:9"), "names the address: {error}");
    assert!(error.contains("still served"), "says what works: {error}");
    assert_eq!(data["details"]["provider"]["connected"], false);
    assert_eq!(body["services"]["training"]["healthy"], true, "{body}");
    // What works without IB does work: bars from the store.
    let (status, bars) = get(
        &http(),
        &format!(
            "{}/api/v1/data/AAPL/1d?start=2010-01-01&end=2010-02-01",
            gw.base
        ),
    )
    .await;
    assert_eq!(status, 200, "{bars}");
}

#[tokio::test]
async fn bad_load_requests_name_the_field_and_start_nothing() {
    let dirs = Dirs::sample();
    let (gw, gateway) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();
    let url = format!("{}/api/v1/data/load", gw.base);
    let cases = [
        (
            json!({"symbol": "AAPL", "timeframe": "1h", "mode": "sideways"}),
            "mode",
        ),
        (json!({"symbol": "AAPL", "timeframe": "7m"}), "timeframe"),
        (json!({"symbol": "", "timeframe": "1h"}), "symbol"),
        (
            json!({"symbol": "AAPL; rm -rf /", "timeframe": "1h"}),
            "symbol",
        ),
        (json!({"timeframe": "1h"}), "symbol"),
        (
            json!({"symbol": "AAPL", "timeframe": "1h", "start_date": "yesterday"}),
            "start_date",
        ),
        (
            json!({"symbol": "AAPL", "timeframe": "1h", "end_date": "2024-13-45"}),
            "end_date",
        ),
        (
            json!({"symbol": "AAPL", "timeframe": "1h", "start_date": "2024-02-01", "end_date": "2024-01-01"}),
            "start_date",
        ),
        (
            json!({"symbol": "AAPL", "timeframe": "1h", "mode": 3}),
            "mode",
        ),
        (
            json!({"symbol": "AAPL", "timeframe": "1h", "start": "2024-01-01"}),
            "start",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = post(&http, &url, &body).await;
        assert_error(status, &answer, 400, "bad_request");
        assert_eq!(
            answer["error"]["details"]["field"], field,
            "{body} → {answer}"
        );
    }
    // Not JSON at all.
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("envelope");
    assert_error(status, &answer, 400, "bad_request");

    assert_eq!(gateway.operations().active_count(), 0);
    let (_, list) = get(&http, &format!("{}/api/v1/operations", gw.base)).await;
    assert_eq!(list["total_count"], 0, "nothing was started: {list}");
}

#[tokio::test]
async fn bad_training_requests_name_the_key_and_start_nothing() {
    let dirs = Dirs::sample();
    let (gw, gateway) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();
    let url = format!("{}/api/v1/trainings/start", gw.base);

    let (status, answer) = post(&http, &url, &json!({"symbols": ["AAPL"]})).await;
    assert_error(status, &answer, 400, "bad_request");
    assert_eq!(answer["error"]["details"]["field"], "strategy_name");

    let (status, answer) = post(&http, &url, &json!({"strategy_name": "no_such_strategy"})).await;
    assert_error(status, &answer, 404, "not_found");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rsi_macd_mlp")
    );

    let (status, answer) = post(&http, &url, &json!({"strategy_name": "../../etc/passwd"})).await;
    assert_error(status, &answer, 400, "bad_request");

    let yaml = crate::support::strategy_yaml(3).replace("epochs: 3", "epochs: 0");
    let (status, answer) = post(&http, &url, &json!({"strategy_yaml": yaml})).await;
    assert_error(status, &answer, 400, "bad_request");
    assert_eq!(
        answer["error"]["details"]["field"], "model.training.epochs",
        "{answer}"
    );

    let (status, answer) = post(
        &http,
        &url,
        &json!({"strategy_name": "rsi_macd_mlp", "timeframes": ["7m"]}),
    )
    .await;
    assert_error(status, &answer, 400, "bad_request");

    let (_, list) = get(&http, &format!("{}/api/v1/operations", gw.base)).await;
    assert_eq!(list["total_count"], 0, "nothing was started: {list}");
    assert_eq!(gateway.operations().active_count(), 0);
}

#[tokio::test]
async fn unknown_operations_are_404_in_the_envelope() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();
    let (status, body) = get(&http, &format!("{}/api/v1/operations/op_nope", gw.base)).await;
    assert_error(status, &body, 404, "not_found");
    let response = http
        .delete(format!("{}/api/v1/operations/op_nope", gw.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status().as_u16(), 404);
    let (status, body) = get(
        &http,
        &format!("{}/api/v1/operations?status=sideways", gw.base),
    )
    .await;
    assert_error(status, &body, 400, "bad_request");
    assert_eq!(body["error"]["details"]["field"], "status");
}

#[tokio::test]
async fn the_api_key_guards_everything_but_health() {
    let (_dirs, gw, gateway) = keyed("correct-horse-battery").await;
    let http = http();
    let (status, _) = get(&http, &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(status, 200, "health stays open");

    for path in ["/api/v1/data", "/api/v1/operations", "/api/v1/data/AAPL/1d"] {
        let (status, body) = get(&http, &format!("{}{path}", gw.base)).await;
        assert_error(status, &body, 401, "unauthorized");
        let response = http
            .get(format!("{}{path}", gw.base))
            .header("x-api-key", "wrong-key-entirely")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 401, "{path} with a wrong key");
    }
    let response = http
        .post(format!("{}/api/v1/data/load", gw.base))
        .json(&json!({"symbol": "AAPL", "timeframe": "1d", "mode": "local"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(gateway.operations().active_count(), 0);
    assert_eq!(
        gateway.operations().list(&Default::default()).1,
        0,
        "nothing started without the key"
    );

    let ok = http
        .get(format!("{}/api/v1/data", gw.base))
        .header("x-api-key", "correct-horse-battery")
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status().as_u16(), 200);
    let ok = http
        .get(format!("{}/api/v1/operations", gw.base))
        .bearer_auth("correct-horse-battery")
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn bars_come_back_as_json_and_arrow_from_the_store() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();

    let (status, inventory) = get(&http, &format!("{}/api/v1/data", gw.base)).await;
    assert_eq!(status, 200);
    let series = inventory["data"].as_array().expect("list");
    let fb = series
        .iter()
        .find(|s| s["symbol"] == "FB" && s["timeframe"] == "1d")
        .expect("FB 1d is in the sample store");
    assert_eq!(fb["rows"], 196, "{fb}");

    let url = format!(
        "{}/api/v1/data/FB/1d?start=2012-05-18&end=2012-06-01",
        gw.base
    );
    let (status, body) = get(&http, &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["points"], 9, "{body}");
    assert_eq!(body["data"]["dates"][0], "2012-05-18T00:00:00+00:00");
    assert_eq!(body["data"]["ohlcv"][0].as_array().map(Vec::len), Some(5));

    let response = http
        .get(&url)
        .header("accept", "application/vnd.apache.arrow.stream")
        .send()
        .await
        .expect("arrow");
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    let bytes = response.bytes().await.expect("body");
    let frame = data_host::api::wire::from_arrow(&bytes).expect("valid Arrow stream");
    assert_eq!(frame.height(), 9);

    let (status, body) = get(&http, &format!("{}/api/v1/data/NOPE/1d", gw.base)).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = get(&http, &format!("{}/api/v1/data/FB/1d?start=soon", gw.base)).await;
    assert_error(status, &body, 400, "bad_request");
    assert_eq!(body["error"]["details"]["field"], "start");
    let (status, body) = get(&http, &format!("{}/api/v1/data/FB/9x", gw.base)).await;
    assert_eq!(
        body["error"]["details"]["field"], "timeframe",
        "{status} {body}"
    );
}

#[tokio::test]
async fn metrics_are_served() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();
    let _ = get(&http, &format!("{}/api/v1/health", gw.base)).await;
    let text = crate::support::text(&format!("{}/metrics", gw.base)).await;
    assert!(
        text.contains("http_requests") || text.contains("hostbridge"),
        "{text}"
    );
}

/// The schema of `method path`'s `status` answer in `doc`, asserting it is documented.
fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    response["content"]["application/json"]["schema"].clone()
}

/// Asserts `body` is valid against `schema`, whose `$ref`s point into `doc`'s
/// components (OpenAPI 3.1 schemas are JSON Schema 2020-12).
fn assert_valid(doc: &Value, schema: &Value, body: &Value, what: &str) {
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
    });
    let Some(keys) = schema.as_object() else {
        panic!("{what}: no JSON schema: {schema}");
    };
    for (key, value) in keys {
        root[key] = value.clone();
    }
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} breaks its schema {schema}: {errors:?}\n{body}"
    );
}

/// Asserts the answer `status, body` of `method path` is documented and valid.
fn assert_conforms(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let schema = response_schema(doc, method, path, status);
    assert_valid(doc, &schema, body, &format!("{method} {path} → {status}"));
}

fn named(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The document, as served.
async fn served_document(http: &reqwest::Client, base: &str) -> Value {
    let (status, doc) = get(http, &format!("{base}/api/v1/openapi.json")).await;
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test]
async fn the_openapi_document_lists_only_routes_that_are_served() {
    let (_dirs, gw, _) = keyed("documented-key-123").await;
    let http = http();
    // The description needs no key.
    let doc = served_document(&http, &gw.base).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    assert!(
        doc["components"]["schemas"]["LoadRequest"]["properties"]["mode"].is_object(),
        "{doc}"
    );

    let documented = api_gateway::api::openapi::documented_paths();
    assert!(documented.len() >= 12, "{documented:?}");
    for (method, path) in documented {
        let url = format!("{}{}", gw.base, path)
            .replace("{symbol}", "FB")
            .replace("{timeframe}", "1d")
            .replace("{id}", "op_unknown");
        let request = match method.as_str() {
            "get" => http.get(&url),
            "post" => http.post(&url).json(&json!({})),
            "delete" => http.delete(&url),
            other => panic!("undocumented method {other}"),
        };
        let response = request
            .header("x-api-key", "documented-key-123")
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        // An event stream does not end: its head is the answer.
        let body = if streaming {
            String::new()
        } else {
            response.text().await.unwrap_or_default()
        };
        // Axum answers an unknown route with a bare 404 and a wrong method with 405;
        // every served route answers something else, errors in the envelope.
        assert_ne!(status, 405, "{method} {path}: {body}");
        if status == 404 {
            let envelope: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(
                envelope["success"], false,
                "{method} {path} is not served: {body}"
            );
        }
        assert!(
            api_gateway::api::openapi::documents_status(&method, &path, status),
            "{method} {path} answered {status}, which is not documented: {body}"
        );
    }
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_without_a_key() {
    let (_dirs, gw, _) = keyed("explorer-key-123").await;
    let http = http();
    // `/docs` sends the browser to `/docs/`, where the page's relative links resolve.
    let page = http
        .get(format!("{}/api/v1/docs", gw.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.url().path(), "/api/v1/docs/");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.headers()
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");

    // Every script and style the page loads comes from the gateway, none from a CDN.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let link = piece.split('"').next().unwrap_or_default();
            assets.push(link.to_owned());
        }
    }
    assert!(
        assets.iter().any(|a| a.ends_with("swagger-ui-bundle.js")),
        "{assets:?}"
    );
    assert!(
        assets.iter().any(|a| a.ends_with("swagger-initializer.js")),
        "{assets:?}"
    );
    for asset in &assets {
        assert!(
            !asset.contains("://") && !asset.starts_with("//"),
            "{asset} is not served by the gateway"
        );
        let url = format!("{}/api/v1/docs/{}", gw.base, asset.trim_start_matches("./"));
        let response = http.get(&url).send().await.expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{url}");
        let bytes = response.bytes().await.expect("asset body");
        assert!(!bytes.is_empty(), "{url} is empty");
    }
    // The initializer points Swagger UI at the document, which it may fetch keyless.
    let init =
        crate::support::text(&format!("{}/api/v1/docs/swagger-initializer.js", gw.base)).await;
    assert!(init.contains("/api/v1/openapi.json"), "{init}");

    // A file that is not there is a 404 in the envelope, still without a key.
    let (status, body) = get(&http, &format!("{}/api/v1/docs/nope.js", gw.base)).await;
    assert_error(status, &body, 404, "not_found");
    // Everything else still needs the key.
    let (status, body) = get(&http, &format!("{}/api/v1/data", gw.base)).await;
    assert_error(status, &body, 401, "unauthorized");
}

#[tokio::test]
async fn the_document_has_schemas_for_requests_answers_errors_and_the_key() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let doc = served_document(&http(), &gw.base).await;

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    // Health needs no key; everything else names the schemes.
    assert_eq!(
        doc["paths"]["/api/v1/health"]["get"]["security"],
        json!([{}])
    );
    assert!(doc["security"].as_array().is_some_and(|s| s.len() == 2));

    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "LoadRequest",
        "TrainRequest",
        "CancelRequest",
        "ErrorResponse",
        "HealthResponse",
        "Success_LoadStarted",
        "Success_Vec_StoredSeries",
        "Success_Bars",
        "Success_HeadTimestamp",
        "TrainingStartedResponse",
        "Success_Strategies",
        "OperationListResponse",
        "OperationResponse",
        "CancelResponse",
        "OperationInfo",
        "EventEnvelope",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }

    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            if let Some(body) = operation.get("requestBody") {
                assert!(
                    body["content"]["application/json"]["schema"].is_object(),
                    "{method} {path}: request body without a schema"
                );
            }
            let responses = operation["responses"].as_object().expect("responses");
            for (status, response) in responses {
                let content = response["content"].as_object();
                let content =
                    content.unwrap_or_else(|| panic!("{method} {path} {status}: no body"));
                if status.starts_with('2') {
                    assert!(
                        content.values().all(|c| c["schema"].is_object()),
                        "{method} {path} {status}: a body without a schema"
                    );
                } else {
                    assert_eq!(
                        content["application/json"]["schema"],
                        named("ErrorResponse"),
                        "{method} {path} {status}: errors are the envelope"
                    );
                }
            }
        }
    }
    for path in ["/api/v1/events", "/api/v1/operations/{id}/events"] {
        let ok = &doc["paths"][path]["get"]["responses"]["200"];
        assert!(
            ok["content"]["text/event-stream"].is_object(),
            "{path}: {ok}"
        );
    }
    // The main calls carry examples.
    for (path, method) in [
        ("/api/v1/data/load", "post"),
        ("/api/v1/trainings/start", "post"),
    ] {
        let examples =
            &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["examples"];
        assert!(examples.is_object(), "{method} {path}: no example");
    }
    for name in ["LoadStarted", "Bars", "TrainingStarted", "ErrorResponse"] {
        let example = &doc["components"]["schemas"][name]["example"];
        assert!(example.is_object(), "{name}: no example");
        assert_valid(
            &doc,
            &named(name),
            example,
            &format!("the example of {name}"),
        );
    }
    let operation = &doc["paths"]["/api/v1/operations/{id}"]["get"]["responses"]["200"]["content"]
        ["application/json"]["example"];
    assert_valid(
        &doc,
        &named("OperationResponse"),
        operation,
        "the operation example",
    );
}

#[test]
fn every_error_body_is_the_documented_envelope() {
    use host_service_base::HostError;
    use utoipa::OpenApi;
    let doc: Value = serde_json::from_str(
        &api_gateway::api::openapi::ApiDoc::openapi()
            .to_json()
            .expect("document"),
    )
    .expect("JSON");
    let errors = [
        HostError::bad_field("symbol", "empty"),
        HostError::BadRequest {
            field: None,
            message: "no".into(),
        },
        HostError::not_found("nothing"),
        HostError::Unauthorized {
            message: "key".into(),
        },
        HostError::Conflict {
            message: "running".into(),
        },
        HostError::Busy {
            message: "full".into(),
            retry_after: Some(std::time::Duration::from_secs(2)),
        },
        HostError::unavailable("data-host", "refused"),
        HostError::Timeout {
            service: "ib-gateway".into(),
            after: std::time::Duration::from_secs(5),
        },
        HostError::internal("bug"),
        HostError::Cancelled,
    ];
    for error in errors {
        let body = serde_json::to_value(error.to_body()).expect("JSON");
        assert_valid(&doc, &named("ErrorResponse"), &body, &format!("{error:?}"));
    }
}

/// Reads one SSE event (`event:` name and `data:`) from a streaming response, bounded.
async fn first_sse_event(response: reqwest::Response) -> (String, Value) {
    use futures::StreamExt;
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("an event in time")
            .expect("the stream stays open")
            .expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(end) = text.find("\n\n") {
            let block = &text[..end];
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                // A keep-alive comment.
                text.drain(..end + 2);
                continue;
            }
            return (name, serde_json::from_str(&data).expect("JSON data"));
        }
    }
    panic!("no SSE event within 30 s: {text}");
}

/// The first event of one operation's stream.
async fn operation_event(http: &reqwest::Client, base: &str, id: &str) -> (String, Value) {
    let stream = http
        .get(format!("{base}/api/v1/operations/{id}/events"))
        .send()
        .await
        .expect("operation events");
    first_sse_event(stream).await
}

#[tokio::test]
async fn real_answers_conform_to_the_documented_schemas() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();
    let base = &gw.base;
    let doc = served_document(&http, base).await;

    let (status, body) = get(&http, &format!("{base}/api/v1/health")).await;
    assert_conforms(&doc, "get", "/api/v1/health", status, &body);
    let (status, body) = get(&http, &format!("{base}/api/v1/data")).await;
    assert_conforms(&doc, "get", "/api/v1/data", status, &body);
    let bars = "/api/v1/data/{symbol}/{timeframe}";
    for (query, expected) in [
        ("FB/1d?start=2012-05-18&end=2012-06-01", 200),
        ("FB/1d?start=2013-01-01&end=2013-01-02", 200),
        ("FB/1d?start=soon", 400),
        ("FB/9x", 400),
        ("NOPE/1d", 404),
    ] {
        let (status, body) = get(&http, &format!("{base}/api/v1/data/{query}")).await;
        assert_eq!(status, expected, "{query}: {body}");
        assert_conforms(&doc, "get", bars, status, &body);
    }
    let head = "/api/v1/data/{symbol}/{timeframe}/head-timestamp";
    let (status, body) = get(&http, &format!("{base}/api/v1/data/AAPL/1d/head-timestamp")).await;
    assert_conforms(&doc, "get", head, status, &body);
    let (status, body) = get(&http, &format!("{base}/api/v1/strategies")).await;
    assert_conforms(&doc, "get", "/api/v1/strategies", status, &body);

    // The event stream, opened before the work starts so it sees it.
    let events = http
        .get(format!("{base}/api/v1/events?type=operation."))
        .send()
        .await
        .expect("events");
    assert_eq!(
        events.headers()["content-type"],
        "text/event-stream",
        "{:?}",
        events.headers()
    );

    let load = "/api/v1/data/load";
    let (status, started) = post(
        &http,
        &format!("{base}{load}"),
        &json!({"symbol": "AAPL", "timeframe": "1d", "mode": "local"}),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    assert_conforms(&doc, "post", load, status, &started);
    let (status, body) = post(&http, &format!("{base}{load}"), &json!({"symbol": ""})).await;
    assert_conforms(&doc, "post", load, status, &body);

    let (name, envelope) = first_sse_event(events).await;
    assert!(name.starts_with("operation."), "{name}");
    assert_valid(
        &doc,
        &named("EventEnvelope"),
        &envelope,
        "an /events envelope",
    );

    let id = started["data"]["operation_id"].as_str().expect("id");
    crate::support::wait_terminal(&http, base, id).await;
    let one = "/api/v1/operations/{id}";
    let (status, body) = get(&http, &format!("{base}/api/v1/operations/{id}")).await;
    assert_conforms(&doc, "get", one, status, &body);
    // A finished operation's stream is its terminal event.
    let (name, operation) = operation_event(&http, base, id).await;
    assert_eq!(name, "terminal");
    assert_valid(
        &doc,
        &named("OperationInfo"),
        &operation,
        "a terminal event",
    );
    let (status, body) = get(&http, &format!("{base}/api/v1/operations/op_nope")).await;
    assert_conforms(&doc, "get", one, status, &body);
    for query in ["", "?status=completed&limit=5", "?status=sideways"] {
        let (status, body) = get(&http, &format!("{base}/api/v1/operations{query}")).await;
        assert_conforms(&doc, "get", "/api/v1/operations", status, &body);
    }
    for target in [id, "op_nope"] {
        let response = http
            .delete(format!("{base}/api/v1/operations/{target}"))
            .send()
            .await
            .expect("cancel");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON");
        assert_conforms(&doc, "delete", one, status, &body);
    }

    // Over the request-size limit: the envelope, on the operations routes too.
    let huge = json!({ "reason": "x".repeat(3 * 1024 * 1024) });
    for (method, path, url) in [
        ("delete", one, format!("{base}/api/v1/operations/op_nope")),
        ("post", load, format!("{base}{load}")),
    ] {
        let request = match method {
            "delete" => http.delete(&url),
            _ => http.post(&url),
        };
        let response = request.json(&huge).send().await.expect("huge body");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("an envelope");
        assert_error(status, &body, 413, "payload_too_large");
        assert_conforms(&doc, method, path, status, &body);
    }

    let train = "/api/v1/trainings/start";
    let (status, started) = post(
        &http,
        &format!("{base}{train}"),
        &json!({"strategy_yaml": crate::support::strategy_yaml(2), "symbols": ["AAPL"], "timeframes": ["1d"]}),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    assert_conforms(&doc, "post", train, status, &started);
    let id = started["task_id"].as_str().expect("task id");
    // A running operation's stream starts with its snapshot.
    let (name, operation) = operation_event(&http, base, id).await;
    assert!(matches!(name.as_str(), "snapshot" | "terminal"), "{name}");
    assert_valid(
        &doc,
        &named("OperationInfo"),
        &operation,
        "a snapshot event",
    );
    let response = http
        .delete(format!("{base}/api/v1/operations/{id}"))
        .json(&json!({"reason": "enough"}))
        .send()
        .await
        .expect("cancel");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON");
    assert_conforms(&doc, "delete", one, status, &body);
    let (status, body) = post(
        &http,
        &format!("{base}{train}"),
        &json!({"strategy_name": "no_such_strategy"}),
    )
    .await;
    assert_conforms(&doc, "post", train, status, &body);
}
