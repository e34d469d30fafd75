//! The optional API key: when `HOSTBRIDGE_API_KEY` is set, every `/api/v1` route but
//! health requires it, as `X-API-Key: KEY` or `Authorization: Bearer KEY`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use host_service_base::HostError;
use subtle::ConstantTimeEq;

/// Wraps `api` (the router nested under `/api/v1`) with the key check.
pub(super) fn require_key(api: Router, key: String) -> Router {
    let key: Arc<[u8]> = Arc::from(key.into_bytes());
    api.layer(middleware::from_fn_with_state(key, check))
}

async fn check(State(key): State<Arc<[u8]>>, request: Request, next: Next) -> Response {
    // Health stays open (load balancers and healthchecks carry no key), and so does the
    // API's description with Swagger UI's files (the browser loads them before the user
    // could enter a key in "Authorize").
    let path = request.uri().path();
    if matches!(
        path.trim_end_matches('/'),
        "/health" | "/openapi.json" | "/docs"
    ) || path.starts_with("/docs/")
    {
        return next.run(request).await;
    }
    match presented(request.headers()) {
        Some(given) if equal(given.as_bytes(), &key) => next.run(request).await,
        Some(_) => HostError::Unauthorized {
            message: "the API key is wrong".to_owned(),
        }
        .into_response(),
        None => HostError::Unauthorized {
            message: "this gateway requires an API key: send X-API-Key or Authorization: Bearer"
                .to_owned(),
        }
        .into_response(),
    }
}

pub(crate) fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Compares in constant time (`subtle`), so the time taken tells an attacker neither
/// how much of a guess was right nor how long the key is: every comparison walks the
/// key's whole length (a fixed cost per server), whatever the guess's length, and the
/// lengths are compared the same way.
pub(crate) fn equal(given: &[u8], key: &[u8]) -> bool {
    let same_length = (given.len() as u64).ct_eq(&(key.len() as u64));
    let mut same_bytes = subtle::Choice::from(1u8);
    for (i, k) in key.iter().enumerate() {
        // A short guess is padded with zeros; the length check above refuses it.
        let g = given.get(i).copied().unwrap_or(0);
        same_bytes &= g.ct_eq(k);
    }
    (same_length & same_bytes).into()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_the_exact_key_is_equal_whatever_the_length_of_a_guess() {
        let key = b"s3cret-key";
        assert!(equal(b"s3cret-key", key));
        for guess in [
            &b""[..],
            b"s3cret",
            b"s3cret-key\0",
            b"s3cret-key-and-more",
            b"S3cret-key",
            b"s3cret-kez",
            b"\0\0\0\0\0\0\0\0\0\0",
        ] {
            assert!(!equal(guess, key), "{guess:?}");
        }
        assert!(!equal(b"x", b""), "an empty key matches nothing but itself");
        assert!(equal(b"", b""));
    }

    #[test]
    fn keys_are_read_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer  s3cret-key "),
        );
        assert_eq!(presented(&h), Some("s3cret-key"));
        h.insert("x-api-key", HeaderValue::from_static("other"));
        assert_eq!(presented(&h), Some("other"));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(presented(&basic), None);
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(equal(b"abcdefgh", b"abcdefgh"));
        assert!(!equal(b"abcdefgx", b"abcdefgh"));
        assert!(!equal(b"abcdefg", b"abcdefgh"));
        assert!(!equal(b"", b"abcdefgh"));
    }
}
