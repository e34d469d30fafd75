//! Every HostError variant -> server answer -> client -> the same variant.

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use host_service_base::HostError;
use host_service_base::error::RemoteError;
use serde_json::Value;

use crate::support::{client, spawn_router};

fn samples() -> Vec<HostError> {
    vec![
        HostError::Disabled {
            service: "training-host".into(),
        },
        HostError::unavailable("ib-gateway", RemoteError("connection refused".into())),
        HostError::Timeout {
            service: "data-host".into(),
            after: Duration::from_millis(2500),
        },
        HostError::Upstream {
            status: 500,
            code: "ib_error_10314".into(),
            message: "bad end time".into(),
        },
        HostError::Upstream {
            status: 418,
            code: "teapot".into(),
            message: "short and stout".into(),
        },
        HostError::Decode {
            what: "bars".into(),
            message: "expected `,` at line 1".into(),
        },
        HostError::Cancelled,
        HostError::bad_field("timeframe", "unknown timeframe `7m`"),
        HostError::BadRequest {
            field: None,
            message: "start after end".into(),
        },
        HostError::not_found("operation op_1 not found"),
        HostError::Conflict {
            message: "session s1 already exists".into(),
        },
        HostError::Busy {
            message: "4 sessions running".into(),
            retry_after: Some(Duration::from_secs(3)),
        },
        HostError::PayloadTooLarge {
            message: "body over 2 MiB".into(),
        },
        HostError::internal("disk full at /var/lib/secret"),
        HostError::Unauthorized {
            message: "missing API key".into(),
        },
    ]
}

/// The fields that must survive the wire (sources and internal messages do not, by
/// design: they are logged, not sent).
fn wire_view(err: &HostError) -> String {
    match err {
        HostError::Unavailable { service, .. } => format!("Unavailable({service})"),
        HostError::Internal { .. } => "Internal".to_owned(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn every_variant_round_trips() {
    let router = Router::new().route(
        "/err/{i}",
        get(|Path(i): Path<usize>| async move { samples().swap_remove(i) }),
    );
    let addr = spawn_router(router).await;
    // No retries: this test is about mapping, not retrying.
    let client = client(addr, host_service_base::RetryPolicy::none());

    for (i, sent) in samples().into_iter().enumerate() {
        let got = client
            .get_json::<Value>(&format!("/err/{i}"), None)
            .await
            .expect_err("error answer");
        assert_eq!(wire_view(&got), wire_view(&sent), "variant {i}");
        assert_eq!(got.code(), sent.code(), "code of variant {i}");
    }
}

#[tokio::test]
async fn statuses_follow_the_table() {
    let router = Router::new().route(
        "/err/{i}",
        get(|Path(i): Path<usize>| async move { samples().swap_remove(i) }),
    );
    let addr = spawn_router(router).await;
    let http = reqwest::Client::new();
    let expected = [
        503, 503, 504, 502, 418, 502, 499, 400, 400, 404, 409, 503, 413, 500, 401,
    ];
    for (i, status) in expected.into_iter().enumerate() {
        let response = http
            .get(format!("http://{addr}/err/{i}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), status, "variant {i}");
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.expect("json body");
        assert_eq!(body["success"], false);
        assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());
        assert_eq!(
            body["detail"], body["error"]["message"],
            "FastAPI clients read `detail`"
        );
        if status == 503 && i != 0 {
            assert!(
                retry_after.is_some(),
                "503 answers carry Retry-After (variant {i})"
            );
        }
        assert!(
            !body.to_string().contains("/var/lib/secret"),
            "internal details stay in the log"
        );
    }
}
