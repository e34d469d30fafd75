//! The one HTTP client a `hostbridge` command uses to talk to the gateway.

use std::time::Duration;

use host_service_base::client::{RetryPolicy, Streamed};
use host_service_base::{HostClient, HostError};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A client of one gateway, carrying the API key on every call.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    http: HostClient,
    key: Option<HeaderValue>,
}

impl GatewayClient {
    /// A client of the gateway at `url`.
    pub fn new(url: &str, api_key: Option<&str>) -> Result<Self, HostError> {
        let http = HostClient::builder(crate::SERVICE_NAME, url)?
            .timeout(Duration::from_secs(60))
            .retry(RetryPolicy {
                max_retries: 2,
                ..RetryPolicy::default()
            })
            .build()?;
        let key = api_key
            .map(|k| {
                HeaderValue::from_str(k.trim())
                    .map_err(|_| HostError::bad_field("api-key", "not a valid header value"))
            })
            .transpose()?;
        Ok(Self { http, key })
    }

    /// The gateway's base URL.
    pub fn base_url(&self) -> &url::Url {
        self.http.base_url()
    }

    fn request(&self, method: Method, path: &str) -> host_service_base::HostRequest<'_> {
        let request = self.http.request(method, path);
        match &self.key {
            Some(key) => request.header(HeaderName::from_static("x-api-key"), key.clone()),
            None => request,
        }
    }

    /// GET `path` with `query`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, HostError> {
        self.request(Method::GET, path)
            .query(query)
            .send_json()
            .await
    }

    /// GET `path` and return the answer as soon as its head arrives, for a body that
    /// streams (Server-Sent Events): the timeout covers the head only.
    pub async fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Streamed, HostError> {
        self.request(Method::GET, path)
            .query(query)
            .header(
                HeaderName::from_static("accept"),
                HeaderValue::from_static("text/event-stream"),
            )
            .send()
            .await
    }

    /// POST a JSON body (not replayed once sent).
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, HostError> {
        self.request(Method::POST, path)
            .json(body)?
            .send_json()
            .await
    }

    /// DELETE `path` (idempotent).
    pub async fn delete(&self, path: &str, body: &Value) -> Result<Value, HostError> {
        self.request(Method::DELETE, path)
            .json(body)?
            .idempotent(true)
            .send_json()
            .await
    }
}
