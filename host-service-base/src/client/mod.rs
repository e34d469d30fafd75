//! `HostClient`: the one HTTP client a process keeps per host service.
//!
//! A pooled client owns its connections; building one per request (as the Python
//! platform hostbridge replaces does) pays a TCP handshake, TLS setup and root-store
//! loading every time. `HostClient` is built once and shared by clone (an `Arc` inside),
//! and adds what every call to a host service needs: a base URL, a per-call timeout,
//! bounded jittered retries that respect idempotency, and cancellation.
//!
//! Underneath is hyper's pooled client (hyper-util), not reqwest: the gateway makes one
//! host call per forwarded request, and reqwest's layers over the same pool (its own
//! URL handling, redirect policy, boxed bodies and futures) cost about as much CPU
//! again as the call itself (`cargo bench -p host-service-base --bench client_cost`).
//! Host calls need none of them: no redirects, no proxies, no cookies.

mod request;
pub use request::{Buffered, Streamed};
mod retry;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::{Method, Uri};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::HostError;
pub use request::HostRequest;
pub use retry::RetryPolicy;

/// Default time one attempt (connect, send, headers and body) may take: a little
/// longer than a host service's own request timeout
/// ([`crate::server::DEFAULT_REQUEST_TIMEOUT`]), so the service's 504 reaches the caller
/// instead of a client-side timeout racing it.
pub const DEFAULT_TIMEOUT: Duration =
    Duration::from_secs(crate::server::DEFAULT_REQUEST_TIMEOUT.as_secs() + 5);
/// Default largest answer read whole ([`HostRequest::send_bytes`]); streamed answers
/// ([`HostRequest::send`]) are not bounded by it.
pub const DEFAULT_MAX_BUFFERED: usize = 512 * 1024 * 1024;
/// Default time to establish a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle keep-alive connections a client keeps per host. A caller forwarding N
/// concurrent requests (the gateway under load) holds up to N connections; with a
/// smaller cap every burst closes the surplus and the next one connects again: at 64
/// concurrent requests a cap of 32 closed and reopened a connection for about one
/// request in thirty (gateway_hop bench). An idle connection costs a socket, and the
/// pool closes it after [`POOL_IDLE_TIMEOUT`].
pub const DEFAULT_POOL_IDLE_PER_HOST: usize = 256;
/// How long an idle keep-alive connection is kept before the pool closes it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A shared, cheaply cloned client of one host service.
#[derive(Debug, Clone)]
pub struct HostClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: transport::Transport,
    user_agent: HeaderValue,
    service: String,
    base_url: Url,
    timeout: Duration,
    deadline: Option<Duration>,
    max_body: usize,
    retry: RetryPolicy,
    /// The `outcome="ok"` call counter, kept once the recorder is installed: building a
    /// labelled metric's key and finding it in the registry on every call costs more
    /// than counting.
    ok_calls: std::sync::OnceLock<metrics::Counter>,
}

/// Builds a [`HostClient`].
#[derive(Debug)]
pub struct HostClientBuilder {
    service: String,
    base_url: Url,
    timeout: Duration,
    deadline: Option<Duration>,
    max_body: usize,
    connect_timeout: Duration,
    retry: RetryPolicy,
    pool_max_idle_per_host: usize,
    user_agent: String,
}

impl HostClientBuilder {
    /// Per-attempt timeout (default [`DEFAULT_TIMEOUT`], 35 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bounds every call, retries included ([`HostRequest::deadline`]; default none:
    /// a call may take `(retries + 1) × timeout` plus backoff).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Largest answer read whole (default [`DEFAULT_MAX_BUFFERED`]); a larger one is a
    /// [`HostError::Decode`] naming the size, and nothing more of it is read.
    pub fn max_buffered(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// TCP connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retry policy (default: 3 retries, 100 ms doubling to 5 s, jitter).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Idle keep-alive connections kept per host (default [`DEFAULT_POOL_IDLE_PER_HOST`]).
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// Builds the client (one connection pool, rustls for https).
    pub fn build(self) -> Result<HostClient, HostError> {
        let http = transport::Transport::new(self.connect_timeout, self.pool_max_idle_per_host)?;
        let user_agent = HeaderValue::try_from(self.user_agent)
            .map_err(|e| HostError::internal(format_args!("user agent: {e}")))?;
        Ok(HostClient {
            inner: Arc::new(Inner {
                http,
                user_agent,
                service: self.service,
                base_url: self.base_url,
                timeout: self.timeout,
                deadline: self.deadline,
                max_body: self.max_body,
                retry: self.retry,
                ok_calls: std::sync::OnceLock::new(),
            }),
        })
    }
}

impl HostClient {
    /// Starts building a client for `service` at `base_url` (http or https).
    pub fn builder(
        service: impl Into<String>,
        base_url: &str,
    ) -> Result<HostClientBuilder, HostError> {
        let base_url = parse_base_url(base_url)?;
        Ok(HostClientBuilder {
            service: service.into(),
            base_url,
            timeout: DEFAULT_TIMEOUT,
            deadline: None,
            max_body: DEFAULT_MAX_BUFFERED,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: RetryPolicy::default(),
            pool_max_idle_per_host: DEFAULT_POOL_IDLE_PER_HOST,
            user_agent: concat!("hostbridge/", env!("CARGO_PKG_VERSION")).to_owned(),
        })
    }

    /// A client with default settings.
    pub fn new(service: impl Into<String>, base_url: &str) -> Result<Self, HostError> {
        Self::builder(service, base_url)?.build()
    }

    /// The service name used in errors, spans and metrics.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The base URL every path is appended to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Starts a request to `path` (which must start with `/`) under the base URL.
    pub fn request(&self, method: Method, path: &str) -> HostRequest<'_> {
        HostRequest::new(self, method, path)
    }

    /// Starts a GET request.
    pub fn get(&self, path: &str) -> HostRequest<'_> {
        self.request(Method::GET, path)
    }

    /// Starts a POST request (not idempotent unless marked so).
    pub fn post(&self, path: &str) -> HostRequest<'_> {
        self.request(Method::POST, path)
    }

    /// GETs `path` and decodes the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<T, HostError> {
        self.get(path).cancel_opt(cancel).send_json().await
    }

    /// POSTs `body` as JSON to `path` and decodes the JSON answer. Not replayed once the
    /// request may have reached the server; use [`HostRequest::idempotent`] to allow it.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        cancel: Option<&CancellationToken>,
    ) -> Result<T, HostError> {
        self.post(path)
            .json(body)?
            .cancel_opt(cancel)
            .send_json()
            .await
    }

    /// The request target of `path` and `query` under the base URL. A plain path (the
    /// usual one: letters, digits, `/-_`...) is appended as it is, with no URL parse per
    /// call (which cost 4 % of the gateway's CPU per forwarded request); any other goes
    /// through the URL parser, which percent-encodes and normalises it the same way.
    fn uri_for(&self, path: &str, query: &[(String, String)]) -> Result<Uri, HostError> {
        let target = if is_plain_path(path) {
            let base = self.inner.base_url.as_str().trim_end_matches('/');
            let mut target = String::with_capacity(base.len() + path.len() + 64);
            target.push_str(base);
            target.push_str(path);
            if !query.is_empty() {
                target.push('?');
                let start = target.len();
                url::form_urlencoded::Serializer::for_suffix(target, start)
                    .extend_pairs(query)
                    .finish()
            } else {
                target
            }
        } else {
            let mut url = self.url_for(path)?;
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            String::from(url)
        };
        Uri::try_from(target).map_err(|e| HostError::bad_field("path", format!("`{path}`: {e}")))
    }

    fn url_for(&self, path: &str) -> Result<Url, HostError> {
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(HostError::bad_field(
                "path",
                format!("`{path}` must start with a single `/`"),
            ));
        }
        let joined = format!(
            "{}{}",
            self.inner.base_url.as_str().trim_end_matches('/'),
            path
        );
        Url::parse(&joined).map_err(|e| HostError::bad_field("path", format!("`{path}`: {e}")))
    }
}

/// A path the URL parser would leave as it is: a single leading `/`, only characters
/// that need no encoding, no `.` segment to normalise, no `%` escape to check.
fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains("/.")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~!$&()*+,;=:@".contains(&b))
}

fn parse_base_url(raw: &str) -> Result<Url, HostError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| HostError::bad_field("base_url", format!("`{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(HostError::bad_field(
            "base_url",
            format!("`{raw}` is not an http(s) URL with a host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(HostError::bad_field(
            "base_url",
            format!("`{raw}` must not carry a query or fragment"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_a_base_path() -> Result<(), HostError> {
        let client = HostClient::new("gw", "http://127.0.0.1:8000/api/v1/")?;
        assert_eq!(
            client.url_for("/operations")?.as_str(),
            "http://127.0.0.1:8000/api/v1/operations"
        );
        assert!(client.url_for("operations").is_err());
        assert!(client.url_for("//evil.example/x").is_err());
        Ok(())
    }

    #[test]
    fn targets_match_what_the_url_parser_makes() -> Result<(), HostError> {
        let client = HostClient::new("gw", "http://127.0.0.1:8000/api/v1/")?;
        let query = vec![
            ("symbol".to_owned(), "ES H5 &=?#".to_owned()),
            ("t".to_owned(), "1d".to_owned()),
        ];
        for path in [
            "/data/head-timestamp",
            "/operations/op_1-2.3~x",
            "/a b/ünï/\"quoted\"",
            "/a/./b/../c",
            "/100%/x%41",
            "/x?y#z",
        ] {
            // A fragment is never sent (HTTP has no place for it).
            let mut url = client.url_for(path)?;
            url.set_fragment(None);
            url.query_pairs_mut().extend_pairs(&query);
            let fast = client.uri_for(path, &query)?;
            assert_eq!(fast.to_string(), url.as_str(), "{path}");
            let no_query = client.uri_for(path, &[])?;
            let mut url = client.url_for(path)?;
            url.set_fragment(None);
            assert_eq!(no_query.to_string(), url.as_str(), "{path}");
        }
        for bad in ["operations", "//evil.example/x", ""] {
            assert!(client.uri_for(bad, &[]).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn bad_base_urls_name_the_field() {
        for bad in ["", "localhost:5001", "ftp://host/", "http://h/?q=1"] {
            match HostClient::new("s", bad) {
                Err(HostError::BadRequest { field, .. }) => {
                    assert_eq!(field.as_deref(), Some("base_url"))
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
