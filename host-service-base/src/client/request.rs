//! One call through a [`HostClient`]: building it, and the attempt/retry loop.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode, Uri};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::HostClient;
use super::retry::should_retry;
use crate::error::{HostError, retry_after};
use crate::telemetry::{CLIENT_REQUESTS_TOTAL, CLIENT_RETRIES_TOTAL};

/// How much of an error answer's body is read to build the error; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A request being built; finish it with [`send`](Self::send),
/// [`send_bytes`](Self::send_bytes) or [`send_json`](Self::send_json).
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct HostRequest<'a> {
    client: &'a HostClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Bytes>,
    headers: HeaderMap,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
    cancel: Option<CancellationToken>,
    idempotent: bool,
    max_retries: Option<u32>,
}

/// A successful answer read whole.
#[derive(Debug)]
pub struct Buffered {
    /// The HTTP status (2xx).
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The answer's body.
    pub body: Bytes,
}

/// A successful answer whose body is still arriving ([`HostRequest::send`]).
#[derive(Debug)]
pub struct Streamed {
    service: String,
    url: url::Url,
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
}

impl Streamed {
    /// The HTTP status (2xx).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The URL the request went to.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The next piece of the body, `None` at its end. A connection lost mid-body is
    /// [`HostError::Unavailable`].
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HostError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    // Trailers carry no body bytes.
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => return Err(HostError::unavailable(self.service.clone(), e)),
            }
        }
    }

    /// The rest of the body as a stream of pieces.
    pub fn bytes_stream(self) -> impl Stream<Item = Result<Bytes, HostError>> + Send + 'static {
        futures::stream::unfold(Some(self), |state| async move {
            let mut streamed = state?;
            match streamed.chunk().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(streamed))),
                Ok(None) => None,
                // The stream ends after its error.
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The whole rest of the body, unbounded: the caller chose to stream, so the size
    /// is its to bound (use [`HostRequest::send_bytes`] for a capped read).
    pub async fn bytes(mut self) -> Result<Bytes, HostError> {
        let mut body = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

enum Outcome {
    Streaming(Streamed),
    Buffered(Buffered),
}

/// A failed attempt, with what the retry decision needs to know.
struct Failure {
    error: HostError,
    /// False only when no connection was made, so the server cannot have seen it.
    sent: bool,
    retry_after: Option<Duration>,
}

impl<'a> HostRequest<'a> {
    pub(super) fn new(client: &'a HostClient, method: Method, path: &str) -> Self {
        // HTTP defines these as idempotent; POST and PATCH are not.
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Self {
            client,
            method,
            path: path.to_owned(),
            query: Vec::new(),
            body: None,
            headers: HeaderMap::new(),
            timeout: None,
            deadline: None,
            cancel: None,
            idempotent,
            max_retries: None,
        }
    }

    /// Appends query parameters (encoded for you).
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        self.query.extend(
            pairs
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
        );
        self
    }

    /// Sets a JSON body.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self, HostError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| HostError::internal(format_args!("encoding request body: {e}")))?;
        self.body = Some(Bytes::from(bytes));
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(self)
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Overrides the client's per-attempt timeout for this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Bounds the whole call, retries and their backoff included: each attempt gets
    /// what is left (at most its own timeout), and no retry starts after the deadline.
    /// Without it a call may take `(retries + 1) × timeout` plus backoff.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Makes the call return [`HostError::Cancelled`] as soon as `token` fires.
    pub fn cancel(mut self, token: &CancellationToken) -> Self {
        self.cancel = Some(token.clone());
        self
    }

    /// [`cancel`](Self::cancel) when a token is given.
    pub fn cancel_opt(self, token: Option<&CancellationToken>) -> Self {
        match token {
            Some(t) => self.cancel(t),
            None => self,
        }
    }

    /// Declares whether the call may be repeated after it may have reached the server.
    /// GET/PUT/DELETE default to true, POST/PATCH to false.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Caps the retries of this call below the client's policy (0 = one attempt).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Sends and returns the answer once its headers arrive; the timeout covers the
    /// headers only, so the body can be streamed. Non-2xx answers become errors.
    pub async fn send(self) -> Result<Streamed, HostError> {
        match self.run(false).await? {
            Outcome::Streaming(response) => Ok(response),
            Outcome::Buffered(_) => Err(HostError::internal("buffered answer on streaming call")),
        }
    }

    /// Sends and reads the whole answer within the timeout.
    pub async fn send_bytes(self) -> Result<Buffered, HostError> {
        match self.run(true).await? {
            Outcome::Buffered(buffered) => Ok(buffered),
            Outcome::Streaming(_) => Err(HostError::internal("streaming answer on buffered call")),
        }
    }

    /// Sends, reads the whole answer and decodes it as JSON.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, HostError> {
        // Named only when decoding fails: this runs on every call.
        let client = self.client;
        let what = (self.method.clone(), self.path.clone());
        let buffered = self.send_bytes().await?;
        serde_json::from_slice(&buffered.body).map_err(|e| HostError::Decode {
            what: format!("{} answer to {} {}", client.service(), what.0, what.1),
            message: e.to_string(),
        })
    }

    async fn run(self, buffer: bool) -> Result<Outcome, HostError> {
        let span = tracing::debug_span!(
            "host_call",
            service = %self.client.service(),
            method = %self.method,
            path = %self.path,
        );
        let cancel = self.cancel.clone().unwrap_or_default();
        let result = async {
            tokio::select! {
                biased;
                () = cancel.cancelled() => Err(HostError::Cancelled),
                result = self.retry_loop(buffer, &cancel) => result,
            }
        }
        .instrument(span)
        .await;
        let service = || self.client.service().to_owned();
        match &result {
            Ok(_) if crate::telemetry::recorder_installed() => self
                .client
                .inner
                .ok_calls
                .get_or_init(|| {
                    metrics::counter!(CLIENT_REQUESTS_TOTAL, "service" => service(), "outcome" => "ok")
                })
                .increment(1),
            Ok(_) => {
                metrics::counter!(CLIENT_REQUESTS_TOTAL, "service" => service(), "outcome" => "ok")
                    .increment(1);
            }
            Err(e) => {
                metrics::counter!(CLIENT_REQUESTS_TOTAL, "service" => service(), "outcome" => e.code().to_owned())
                    .increment(1);
            }
        }
        result
    }

    async fn retry_loop(
        &self,
        buffer: bool,
        cancel: &CancellationToken,
    ) -> Result<Outcome, HostError> {
        let uri = self.client.uri_for(&self.path, &self.query)?;
        let mut policy = self.client.retry_policy().clone();
        if let Some(cap) = self.max_retries {
            policy.max_retries = policy.max_retries.min(cap);
        }
        let mut delays = policy.delays();
        let mut attempt = 0u32;
        let per_attempt = self.timeout.unwrap_or(self.client.inner.timeout);
        let deadline = self.deadline.or(self.client.inner.deadline);
        let ends = deadline.map(|d| (tokio::time::Instant::now() + d, d));
        loop {
            let timeout = match ends {
                None => per_attempt,
                Some((at, total)) => {
                    let left = at.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Err(self.out_of_time(total));
                    }
                    per_attempt.min(left)
                }
            };
            let failure = match self.attempt(&uri, buffer, timeout).await {
                Ok(outcome) => return Ok(outcome),
                Err(failure) => failure,
            };
            if let Some((at, total)) = ends
                && matches!(failure.error, HostError::Timeout { .. })
                && tokio::time::Instant::now() >= at
            {
                return Err(self.out_of_time(total));
            }
            if !should_retry(&failure.error, self.idempotent, failure.sent) {
                return Err(failure.error);
            }
            let Some(delay) = policy.next_delay(&failure.error, failure.retry_after, &mut delays)
            else {
                return Err(failure.error);
            };
            if ends.is_some_and(|(at, _)| tokio::time::Instant::now() + delay >= at) {
                // The retry could not start before the deadline: the last error is the
                // truest answer.
                return Err(failure.error);
            }
            attempt += 1;
            tracing::debug!(attempt, ?delay, error = %failure.error, "retrying");
            metrics::counter!(CLIENT_RETRIES_TOTAL, "service" => self.client.service().to_owned())
                .increment(1);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(HostError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The error of a call whose whole deadline passed.
    fn out_of_time(&self, deadline: Duration) -> HostError {
        HostError::Timeout {
            service: self.client.service().to_owned(),
            after: deadline,
        }
    }

    async fn attempt(
        &self,
        uri: &Uri,
        buffer: bool,
        timeout: Duration,
    ) -> Result<Outcome, Failure> {
        let service = self.client.service();
        let max_body = self.client.inner.max_body;
        let mut request = Request::new(Full::new(self.body.clone().unwrap_or_default()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
            .headers_mut()
            .insert(USER_AGENT, self.client.inner.user_agent.clone());
        let exchange = async {
            let response = self
                .client
                .inner
                .http
                .send(request)
                .await
                .map_err(|e| transport_failure(service, e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(error_answer(service, response).await);
            }
            let (head, body) = response.into_parts();
            if !buffer {
                // A URI this client built is a valid URL.
                let url = url::Url::parse(&uri.to_string()).map_err(|e| Failure {
                    error: HostError::internal(format_args!("request URL: {e}")),
                    sent: true,
                    retry_after: None,
                })?;
                return Ok(Outcome::Streaming(Streamed {
                    service: service.to_owned(),
                    url,
                    status,
                    headers: head.headers,
                    body,
                }));
            }
            let body = read_capped(service, body, max_body).await?;
            Ok(Outcome::Buffered(Buffered {
                status,
                headers: head.headers,
                body,
            }))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Failure {
                error: HostError::Timeout {
                    service: service.to_owned(),
                    after: timeout,
                },
                sent: true,
                retry_after: None,
            }),
        }
    }
}

/// Reads a whole answer, refusing one larger than `max` bytes (announced or sent):
/// a confused or hostile upstream must not make this process buffer without end.
async fn read_capped(service: &str, mut body: Incoming, max: usize) -> Result<Bytes, Failure> {
    let too_large = |size: String| Failure {
        error: HostError::Decode {
            what: format!("{service} answer"),
            message: format!(
                "the answer is {size}, over the {max} bytes this client buffers; ask for \
                 less (a narrower range) or stream it"
            ),
        },
        sent: true,
        retry_after: None,
    };
    // hyper reports the Content-Length it read as an exact size hint.
    let announced = body.size_hint().exact();
    if let Some(announced) = announced
        && announced > max as u64
    {
        return Err(too_large(format!("{announced} bytes")));
    }
    let mut bytes =
        BytesMut::with_capacity(announced.map_or(0, |n| usize::try_from(n).unwrap_or(0).min(max)));
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(chunk) = frame.into_data() else {
                    continue; // trailers
                };
                if bytes.len() + chunk.len() > max {
                    return Err(too_large(format!("more than {max} bytes")));
                }
                if bytes.is_empty() && body.is_end_stream() {
                    // The usual small answer arrives in one piece: keep it, no copy.
                    return Ok(chunk);
                }
                bytes.extend_from_slice(&chunk);
            }
            None => return Ok(bytes.freeze()),
            Some(Err(e)) => {
                return Err(Failure {
                    error: HostError::unavailable(service, e),
                    sent: true,
                    retry_after: None,
                });
            }
        }
    }
}

fn transport_failure(service: &str, error: hyper_util::client::legacy::Error) -> Failure {
    // A connect error means no byte of the request left this process.
    let sent = !error.is_connect();
    Failure {
        error: HostError::unavailable(service, error),
        sent,
        retry_after: None,
    }
}

async fn error_answer(service: &str, response: Response<Incoming>) -> Failure {
    let (head, mut body) = response.into_parts();
    let mut bytes = BytesMut::new();
    // A broken or huge error body still yields an error built from the status.
    while bytes.len() < MAX_ERROR_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    bytes.extend_from_slice(&chunk);
                }
            }
            None | Some(Err(_)) => break,
        }
    }
    bytes.truncate(MAX_ERROR_BODY);
    Failure {
        error: HostError::from_upstream(service, head.status, &head.headers, &bytes),
        sent: true,
        retry_after: retry_after(&head.headers),
    }
}
