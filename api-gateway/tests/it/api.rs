//! The /api/v1 surface: health, bad input answered with the envelope naming the field,
//! the API key, bars as JSON and Arrow, metrics.

use api_gateway::GatewayConfig;
use serde_json::{Value, json};

use crate::support::{Dirs, gateway, get, http, post};

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
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let (status, body) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy", "{body}");
    assert!(body["version"].is_string());
    for service in ["data", "training"] {
        assert_eq!(body["services"][service]["mode"], "local", "{body}");
        assert_eq!(body["services"][service]["healthy"], true, "{body}");
        assert!(
            body["services"][service]["latency_ms"].is_number(),
            "{body}"
        );
    }
    assert_eq!(body["services"]["training"]["details"]["device"], "cpu");
    // The scaffold's liveness route is there too, for container healthchecks.
    let (status, live) = get(&http(), &format!("{}/health", gw.base)).await;
    assert_eq!((status, &live["healthy"]), (200, &json!(true)), "{live}");
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
    let dirs = Dirs::sample();
    let config = GatewayConfig {
        api_key: Some("correct-horse-battery".into()),
        ..GatewayConfig::default()
    };
    let (gw, gateway) = gateway(dirs.settings(config)).await;
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

#[tokio::test]
async fn the_openapi_document_lists_only_routes_that_are_served() {
    let dirs = Dirs::sample();
    let config = GatewayConfig {
        api_key: Some("documented-key-123".into()),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
    let http = http();
    // The description and the page need no key.
    let (status, doc) = get(&http, &format!("{}/api/v1/openapi.json", gw.base)).await;
    assert_eq!(status, 200, "{doc}");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    assert!(
        doc["components"]["schemas"]["LoadRequest"]["properties"]["mode"].is_object(),
        "{doc}"
    );
    let page = http
        .get(format!("{}/api/v1/docs", gw.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("openapi.json") && !html.contains("https://"),
        "no CDN"
    );

    let documented = api_gateway::api::openapi::documented_paths();
    assert!(documented.len() >= 11, "{documented:?}");
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
        let body = response.text().await.unwrap_or_default();
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
    }
}
