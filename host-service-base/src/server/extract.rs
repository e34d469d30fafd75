//! Extractors whose rejections are hostbridge error answers naming the offending
//! field, instead of axum's plain-text rejections.
//!
//! How a malformed request is answered depends on the server's [`ValidationStyle`]: the
//! gateway answers 400 in its own envelope; the host services answer 422 with FastAPI's
//! `detail` list as well, because KTRDR's clients of those services read that shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{Detail, HostError, LocPart, ValidationIssue};

/// How a server answers a body or query string that does not deserialize.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValidationStyle {
    /// 400 in the hostbridge envelope, `details.field` naming the input (the gateway).
    #[default]
    Envelope,
    /// 422 as FastAPI answers it, `detail: [{loc, msg, type}]`, with the hostbridge
    /// `error` object beside it (the host services, wire-compatible with KTRDR's).
    FastApi,
}

impl ValidationStyle {
    /// The style the scaffold put into the request (the default when none).
    fn of(extensions: &Extensions) -> Self {
        extensions.get::<Self>().copied().unwrap_or_default()
    }
}

/// `axum::Json` with errors in the hostbridge envelope. A missing or mistyped field is
/// a 400 (or 422, see [`ValidationStyle`]) whose `details.field` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let style = ValidationStyle::of(req.extensions());
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection).into_answer(style)),
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
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                let style = ValidationStyle::of(&parts.extensions);
                Err(query_rejection(rejection).into_answer(style))
            }
        }
    }
}

/// A request that did not deserialize: where, what, and the pydantic-style type.
#[derive(Debug)]
enum Rejected {
    /// Not a validation problem (a body over the limit): answered as it is.
    Other(HostError),
    Invalid {
        /// `body` or `query` first, then the path to the field.
        loc: Vec<LocPart>,
        message: String,
        kind: &'static str,
    },
}

impl Rejected {
    fn into_answer(self, style: ValidationStyle) -> Response {
        let (loc, message, kind) = match self {
            Self::Other(error) => return error.into_response(),
            Self::Invalid { loc, message, kind } => (loc, message, kind),
        };
        let issue = ValidationIssue {
            loc,
            msg: message.clone(),
            kind: kind.to_owned(),
        };
        let error = HostError::BadRequest {
            field: Some(issue.field().unwrap_or_else(|| where_of(&issue).to_owned())),
            message,
        };
        match style {
            ValidationStyle::Envelope => error.into_response(),
            ValidationStyle::FastApi => {
                tracing::debug!(%error, "request rejected");
                let mut body = error.to_body();
                body.detail = Detail::Issues(vec![issue]);
                (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
            }
        }
    }
}

/// `body`, `query` or `header` when the problem is the whole input, not one field.
fn where_of(issue: &ValidationIssue) -> &str {
    match issue.loc.last() {
        Some(LocPart::Key(k)) => k,
        _ => "body",
    }
}

fn json_rejection(rejection: JsonRejection) -> Rejected {
    let text = rejection.body_text();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Rejected::Other(HostError::PayloadTooLarge { message: text });
    }
    let (loc, kind) = match &rejection {
        JsonRejection::MissingJsonContentType(_) => (
            vec![
                LocPart::Key("header".into()),
                LocPart::Key("content-type".into()),
            ],
            "missing",
        ),
        JsonRejection::JsonSyntaxError(_) => (vec![LocPart::Key("body".into())], "json_invalid"),
        _ => (located("body", &text), error_kind(&text)),
    };
    Rejected::Invalid {
        loc,
        message: text,
        kind,
    }
}

fn query_rejection(rejection: QueryRejection) -> Rejected {
    let text = rejection.body_text();
    Rejected::Invalid {
        loc: located("query", &text),
        kind: error_kind(&text),
        message: text,
    }
}

/// `where` followed by the field path serde named (`strategy.layers[0]` →
/// `["body", "strategy", "layers", 0]`).
fn located(place: &str, text: &str) -> Vec<LocPart> {
    let mut loc = vec![LocPart::Key(place.to_owned())];
    let Some(path) = field_in_serde_message(text) else {
        return loc;
    };
    for segment in path.split('.') {
        let mut parts = segment.split('[');
        if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
            loc.push(LocPart::Key(name.to_owned()));
        }
        for index in parts {
            match index.trim_end_matches(']').parse::<u64>() {
                Ok(i) => loc.push(LocPart::Index(i)),
                Err(_) => loc.push(LocPart::Key(index.trim_end_matches(']').to_owned())),
            }
        }
    }
    loc
}

/// The pydantic error type closest to serde's message, so FastAPI clients that switch
/// on `type` see the names they know.
fn error_kind(text: &str) -> &'static str {
    if text.contains("missing field") {
        return "missing";
    }
    if text.contains("unknown field") {
        return "extra_forbidden";
    }
    // What `str::parse` says when a query value is not a number or bool.
    let parsing = [
        ("invalid digit", "int_parsing"),
        ("number too large", "int_parsing"),
        ("invalid float literal", "float_parsing"),
        ("provided string was not `true` or `false`", "bool_parsing"),
    ];
    if let Some((_, kind)) = parsing.iter().find(|(says, _)| text.contains(says)) {
        return kind;
    }
    let Some(expected) = text.split("expected ").nth(1) else {
        return "value_error";
    };
    let kinds = [
        ("a string", "string_type"),
        ("a borrowed string", "string_type"),
        ("a boolean", "bool_type"),
        ("f64", "float_type"),
        ("f32", "float_type"),
        ("a sequence", "list_type"),
        ("a map", "dict_type"),
        ("struct", "dict_type"),
        ("u", "int_type"),
        ("i", "int_type"),
    ];
    kinds
        .iter()
        .find(|(prefix, _)| expected.starts_with(prefix))
        .map_or("value_error", |(_, kind)| kind)
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
    // and "Failed to deserialize query string: limit: invalid digit found in string".
    let after = ["target type: ", "query string: "]
        .iter()
        .find_map(|marker| text.rsplit_once(marker).map(|(_, r)| r))
        .unwrap_or(text);
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
    fn locations_follow_the_serde_path() {
        let text = "Failed to deserialize the JSON body into the target type: strategy.layers[2]: invalid type: string \"x\", expected u64 at line 1 column 9";
        assert_eq!(
            located("body", text),
            vec![
                LocPart::Key("body".into()),
                LocPart::Key("strategy".into()),
                LocPart::Key("layers".into()),
                LocPart::Index(2),
            ]
        );
        assert_eq!(error_kind(text), "int_type");
        assert_eq!(
            located(
                "query",
                "Failed to deserialize query string: missing field `symbol`"
            ),
            vec![LocPart::Key("query".into()), LocPart::Key("symbol".into())]
        );
        assert_eq!(error_kind("missing field `symbol`"), "missing");
        assert_eq!(
            error_kind("timeframe: invalid type: integer `5`, expected a string"),
            "string_type"
        );
        assert_eq!(error_kind("premature end of input"), "value_error");
    }

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
