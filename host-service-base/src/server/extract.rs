//! Extractors whose rejections are [`HostError`]s naming the offending field, instead
//! of axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::HostError;

/// `axum::Json` with errors in the hostbridge envelope. A missing or mistyped field is
/// a 400 whose `details.field` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = HostError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `axum::extract::Query` with errors in the hostbridge envelope naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = HostError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> HostError {
    let text = rejection.body_text();
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return HostError::PayloadTooLarge { message: text };
    }
    let field = match &rejection {
        JsonRejection::MissingJsonContentType(_) => Some("content-type".to_owned()),
        _ => field_in_serde_message(&text),
    };
    HostError::BadRequest {
        field: field.or_else(|| Some("body".to_owned())),
        message: text,
    }
}

fn query_rejection(rejection: QueryRejection) -> HostError {
    let text = rejection.body_text();
    HostError::BadRequest {
        field: field_in_serde_message(&text).or_else(|| Some("query".to_owned())),
        message: text,
    }
}

/// serde names fields as "missing field `symbol`" or "`timeframe`: invalid type ..."
/// (axum prefixes the path for nested errors). Pull the first backquoted name out.
fn field_in_serde_message(text: &str) -> Option<String> {
    if let Some(rest) = text.split("missing field `").nth(1) {
        return rest.split('`').next().map(str::to_owned);
    }
    if let Some(rest) = text.split("unknown field `").nth(1) {
        return rest.split('`').next().map(str::to_owned);
    }
    // axum's "Failed to deserialize the JSON body into the target type: start: premature end..."
    let after = text.rsplit_once("target type: ").map_or(text, |(_, r)| r);
    let candidate = after.split(": ").next()?;
    let looks_like_path = !candidate.is_empty()
        && candidate.len() <= 64
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c));
    looks_like_path.then(|| candidate.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_field_names_in_serde_messages() {
        assert_eq!(
            field_in_serde_message("missing field `symbol` at line 1 column 2").as_deref(),
            Some("symbol")
        );
        assert_eq!(
            field_in_serde_message("Failed to deserialize the JSON body into the target type: timeframe: invalid type: integer `5`, expected a string at line 1 column 15").as_deref(),
            Some("timeframe")
        );
        assert_eq!(
            field_in_serde_message(
                "Failed to parse the request body as JSON: expected value at line 1 column 1"
            ),
            None
        );
    }
}
