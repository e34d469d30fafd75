//! data-host's HTTP contract over a real socket, on the local store (`--source local`).

use chrono::{DateTime, TimeZone, Utc};
use data_host::api::wire;
use data_host::provider::BarsRequest;
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use serde_json::{Value, json};

use crate::support::{assert_both_clients_get, local, sample_copy, start_host};

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("valid date")
}

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json answer"))
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}{path}")).await.expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json answer"))
}

#[tokio::test]
async fn historical_json_is_the_pandas_layout_and_matches_the_store_row_for_row() {
    let dir = sample_copy();
    let host = start_host(local(dir.path())).await;
    let (status, answer) = post(
        &host.base,
        "/data/historical",
        &json!({ "symbol": "AAPL", "timeframe": "1d", "start": "2010-01-01T00:00:00", "end": "2011-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["error"], Value::Null);
    let data = answer["data"].as_str().expect("data is a JSON string");
    let parsed: serde_json::Map<String, Value> =
        serde_json::from_str(data).expect("data parses as an object");
    assert_eq!(answer["rows"].as_u64(), Some(parsed.len() as u64));
    assert_eq!(parsed.len(), 252, "trading days of 2010");
    for (key, row) in &parsed {
        // pandas `to_json(orient="index", date_format="iso")` keys: 2010-01-04T00:00:00.000Z
        assert!(
            DateTime::parse_from_rfc3339(key).is_ok() && key.ends_with(".000Z"),
            "{key}"
        );
        for field in ["open", "high", "low", "close", "volume"] {
            assert!(row[field].is_number(), "{key} {field}");
        }
    }

    let store = Store::new(dir.path(), StoreFormat::Csv);
    let symbol = Symbol::parse("AAPL").expect("symbol");
    let expected = store
        .load_range(&symbol, Timeframe::D1, utc(2010, 1, 1), utc(2011, 1, 1))
        .expect("store");
    let decoded = wire::from_pandas_json(data).expect("decode");
    assert_eq!(decoded, expected, "every row, every column");
}

#[tokio::test]
async fn arrow_and_json_clients_get_the_stored_bars() {
    let dir = sample_copy();
    let host = start_host(local(dir.path())).await;
    let store = Store::new(dir.path(), StoreFormat::Csv);
    for (tf, start, end) in [
        (Timeframe::D1, utc(2005, 1, 1), utc(2008, 1, 1)),
        (Timeframe::H1, utc(2025, 1, 1), utc(2025, 7, 1)),
    ] {
        let request =
            BarsRequest::new(Symbol::parse("aapl").expect("symbol"), tf, start, end, None)
                .expect("request");
        let expected = store
            .load_range(&request.symbol, tf, start, end)
            .expect("store");
        assert!(expected.height() > 500, "{tf}: {}", expected.height());
        assert_both_clients_get(&host.base, &request, &expected).await;
        if tf == Timeframe::H1 {
            let text = wire::to_pandas_json(&expected).expect("json");
            let as_pandas_writes = wire::from_pandas_json(&text).expect("decode");
            assert_ne!(
                as_pandas_writes, expected,
                "the 1h sample has more than ten decimals"
            );
        }
    }
}

#[tokio::test]
async fn the_streamed_arrow_answer_says_its_exact_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 50,000 minute bars: about 2.4 MB of Arrow, several 256 KiB chunks.
    let rows = 50_000usize;
    let start = utc(2020, 1, 1).timestamp_millis();
    let timestamps: Vec<i64> = (0..rows as i64).map(|i| start + i * 60_000).collect();
    let prices: Vec<f64> = (0..rows).map(|i| 100.0 + (i % 977) as f64 / 7.0).collect();
    let frame = data_host::bars::frame_from_columns(
        timestamps,
        [
            prices.clone(),
            prices.clone(),
            prices.clone(),
            prices,
            vec![1e6; rows],
        ],
    )
    .expect("frame");
    Store::new(dir.path(), StoreFormat::Csv)
        .save(
            &Symbol::parse("SYNTH").expect("symbol"),
            Timeframe::M1,
            &frame,
        )
        .expect("save");
    let host = start_host(local(dir.path())).await;
    let response = reqwest::Client::new()
        .post(format!("{}/data/historical", host.base))
        .header("accept", wire::ARROW_STREAM)
        .json(&json!({ "symbol": "SYNTH", "timeframe": "1m", "start": "2000-01-01", "end": "2100-01-01" }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], wire::ARROW_STREAM);
    assert!(
        headers.get("transfer-encoding").is_none(),
        "length-delimited, not chunked: {headers:?}"
    );
    let announced: usize = headers["content-length"]
        .to_str()
        .expect("text")
        .parse()
        .expect("a number");
    let body = response.bytes().await.expect("body");
    assert_eq!(body.len(), announced);
    assert!(
        announced > 3 * host_service_base::server::CHUNK_BYTES,
        "{announced}"
    );
    assert_eq!(headers["x-rows"], rows.to_string().as_str());
    assert_eq!(
        wire::from_arrow(&body).expect("a whole Arrow stream"),
        frame
    );
}

#[tokio::test]
async fn bad_input_is_named_and_nothing_is_written() {
    let dir = sample_copy();
    let before = snapshot(dir.path());
    let host = start_host(local(dir.path())).await;
    let base =
        json!({ "symbol": "AAPL", "timeframe": "1d", "start": "2010-01-01", "end": "2011-01-01" });
    let cases: Vec<(&str, Value, &str)> = vec![
        ("timeframe", json!("7m"), "invalid:timeframe"),
        ("timeframe", json!("1 day"), "invalid:timeframe"),
        ("start", json!("2012-01-01"), "invalid:start"),
        ("start", json!("2024-13-45"), "invalid:start"),
        ("end", json!("soon"), "invalid:end"),
        ("symbol", json!("../etc/passwd"), "invalid:symbol"),
        ("symbol", json!("a/b"), "invalid:symbol"),
        ("symbol", json!(""), "invalid:symbol"),
        ("symbol", json!("A".repeat(60)), "invalid:symbol"),
        (
            "instrument_type",
            json!("crypto"),
            "invalid:instrument_type",
        ),
    ];
    for (field, value, code) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let (status, answer) = post(&host.base, "/data/historical", &body).await;
        assert_eq!(status, 200, "{field}={value}");
        assert_eq!(answer["success"], false, "{field}={value}: {answer}");
        assert_eq!(answer["error_code"], code, "{field}={value}: {answer}");
        let error = answer["error"].as_str().expect("error text");
        assert!(error.contains(field), "error names `{field}`: {error}");
        assert_eq!(answer["data"], Value::Null);
    }

    // Structurally broken bodies: 422 as KTRDR's FastAPI data-host answers them
    // (`detail: [{loc, msg, type}]`), the hostbridge envelope naming the field beside it.
    let mut missing = base.clone();
    missing.as_object_mut().expect("object").remove("end");
    let mut mistyped = base.clone();
    mistyped["timeframe"] = json!(60);
    let broken = [
        (
            missing.to_string(),
            json!(["body", "end"]),
            "missing",
            "end",
        ),
        (
            mistyped.to_string(),
            json!(["body", "timeframe"]),
            "string_type",
            "timeframe",
        ),
        (
            "{not json".to_owned(),
            json!(["body"]),
            "json_invalid",
            "body",
        ),
    ];
    for (body, loc, kind, field) in broken {
        let raw = reqwest::Client::new()
            .post(format!("{}/data/historical", host.base))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(raw.status(), 422, "{body}");
        let answer: Value = raw.json().await.expect("json");
        assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["type"], kind, "{body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    let (status, _) = post(&host.base, "/data/historical", &base).await;
    assert_eq!(status, 200, "the host still serves");

    assert_eq!(snapshot(dir.path()), before, "the store is untouched");
}

fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn validate_symbol_info_and_head_timestamp() {
    let dir = sample_copy();
    let host = start_host(local(dir.path())).await;

    let (_, answer) = post(
        &host.base,
        "/data/validate",
        &json!({ "symbol": "MSFT", "timeframes": ["1d", "1h"] }),
    )
    .await;
    assert_eq!(answer["success"], true);
    assert_eq!(answer["is_valid"], true);
    assert_eq!(
        answer["head_timestamps"],
        json!({ "1d": "2000-03-01T00:00:00+00:00", "1h": null })
    );
    assert_eq!(answer["contract_info"]["asset_type"], "STK");

    let (_, answer) = post(&host.base, "/data/validate", &json!({ "symbol": "ZZZZ" })).await;
    assert_eq!(
        (answer["success"].as_bool(), answer["is_valid"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(
        answer["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("ZZZZ"))
    );

    let (_, answer) = post(
        &host.base,
        "/data/validate",
        &json!({ "symbol": "AAPL", "timeframes": ["2d"] }),
    )
    .await;
    assert_eq!(
        (answer["success"].as_bool(), answer["error_code"].as_str()),
        (Some(false), Some("invalid:timeframe"))
    );

    // At most one entry per timeframe; repeats within that are answered once.
    let (_, answer) = post(
        &host.base,
        "/data/validate",
        &json!({ "symbol": "MSFT", "timeframes": ["1d", "1d", "1h"] }),
    )
    .await;
    assert_eq!(
        answer["head_timestamps"].as_object().map(|m| m.len()),
        Some(2),
        "{answer}"
    );
    let (_, answer) = post(
        &host.base,
        "/data/validate",
        &json!({ "symbol": "MSFT", "timeframes": vec!["1d"; 12] }),
    )
    .await;
    assert_eq!(
        (answer["success"].as_bool(), answer["error_code"].as_str()),
        (Some(false), Some("invalid:timeframes")),
        "{answer}"
    );
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 11")),
        "{answer}"
    );

    let (_, answer) = get(&host.base, "/data/symbol-info/AAPL").await;
    assert_eq!(answer["head_timestamps"]["1h"], "2024-08-06T13:30:00+00:00");

    // An empty instrument_type means absent.
    let (_, answer) = get(
        &host.base,
        "/data/head-timestamp?symbol=GOOG&timeframe=1d&instrument_type=",
    )
    .await;
    assert_eq!(
        answer,
        json!({ "success": true, "timestamp": "2004-08-19T00:00:00+00:00", "error": null })
    );
    let (_, answer) = get(&host.base, "/data/head-timestamp?symbol=GOOG&timeframe=1y").await;
    assert_eq!(answer["error_code"], "invalid:timeframe");
    // A missing query parameter is FastAPI's 422, located in the query.
    let (status, answer) = get(&host.base, "/data/head-timestamp?symbol=GOOG").await;
    assert_eq!(
        (status, answer["error"]["details"]["field"].as_str()),
        (422, Some("timeframe")),
        "{answer}"
    );
    assert_eq!(answer["detail"][0]["loc"], json!(["query", "timeframe"]));
}

#[tokio::test]
async fn health_endpoints_report_real_figures() {
    let dir = sample_copy();
    let host = start_host(local(dir.path())).await;
    let (_, live) = get(&host.base, "/health").await;
    assert_eq!(
        (
            live["healthy"].as_bool(),
            live["service"].as_str(),
            live["status"].as_str()
        ),
        (Some(true), Some("ib-connector"), Some("healthy"))
    );

    let ok =
        json!({ "symbol": "IBM", "timeframe": "1d", "start": "2001-01-01", "end": "2001-02-01" });
    post(&host.base, "/data/historical", &ok).await;
    post(&host.base, "/data/historical", &ok).await;
    post(
        &host.base,
        "/data/historical",
        &json!({ "symbol": "IBM", "timeframe": "9h", "start": "2001-01-01", "end": "2001-02-01" }),
    )
    .await;

    let (_, detailed) = get(&host.base, "/health/detailed").await;
    assert_eq!(detailed["total_requests"], 3, "{detailed}");
    assert_eq!(detailed["error_count"], 1);
    assert!(
        detailed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("9h"))
    );
    assert_eq!(
        detailed["ib_gateway_connected"], false,
        "the local source has no gateway"
    );
    assert_eq!(detailed["source"], "local");
    assert!(detailed["uptime_seconds"].as_f64().is_some_and(|s| s > 0.0));

    assert_eq!(
        (&detailed["healthy"], &detailed["status"]),
        (&json!(true), &json!("healthy")),
        "a store needs no gateway: {detailed}"
    );

    let (_, basic) = get(&host.base, "/health/").await;
    assert_eq!(basic["ib_status"]["connected"], false);
    assert_eq!(basic["connection_info"]["service_running"], true);
    assert_eq!(basic["healthy"], true, "{basic}");
    // The counters DESIGN.md names are on `/health/` too (3 before, 1 failed; the
    // health reads themselves are not data requests).
    assert_eq!(
        (&basic["total_requests"], &basic["error_count"]),
        (&json!(3), &json!(1)),
        "{basic}"
    );
    assert!(
        basic["uptime_seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{basic}"
    );
}

#[tokio::test]
async fn a_symbol_stored_in_lower_case_is_served_and_a_bad_one_lists_the_allowed_characters() {
    // Another tool wrote the store file with a lower-case symbol.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        crate::support::sample_dir().join("AAPL_1d.csv"),
        dir.path().join("aapl_1d.csv"),
    )
    .expect("copy");
    let host = start_host(local(dir.path())).await;
    for asked in ["AAPL", "aapl", "Aapl"] {
        let (status, answer) = post(
            &host.base,
            "/data/historical",
            &json!({ "symbol": asked, "timeframe": "1d", "start": "2010-01-01", "end": "2011-01-01" }),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(answer["success"], true, "{asked}: {answer}");
        assert_eq!(answer["rows"], 252, "{asked}: {answer}");
    }

    for bad in ["a/b", "", "-rf", "A B"] {
        let (_, answer) = post(
            &host.base,
            "/data/historical",
            &json!({ "symbol": bad, "timeframe": "1d", "start": "2010-01-01", "end": "2011-01-01" }),
        )
        .await;
        assert_eq!(answer["error_code"], "invalid:symbol", "{bad:?}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("`symbol`") && error.contains("letters, digits, `.` and `-`"),
            "{bad:?}: the error names the field and the allowed characters: {error}"
        );
    }
}
