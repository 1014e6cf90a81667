//! The body type every route answers with, and small response helpers.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// Forwarded bodies stream; the router's own answers are buffered.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// Lambda's limit on an invocation payload is 6 MB; control bodies are far smaller.
pub const MAX_BODY: usize = 6 * 1024 * 1024 + 1024;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn with_status(status: StatusCode, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

/// `value` as JSON with `content_type`.
pub fn json_as<T: Serialize>(
    status: StatusCode,
    content_type: &'static str,
    value: &T,
) -> Response<Body> {
    let bytes = match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        // Only maps with non-string keys fail, and the router builds none.
        Err(error) => {
            tracing::error!(%error, "cannot serialise a response");
            return with_status(StatusCode::INTERNAL_SERVER_ERROR, empty());
        }
    };
    let mut resp = with_status(status, full(bytes));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    json_as(status, "application/json", value)
}

/// The control API's error shape.
pub fn control_error(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

/// The whole request body, or `None` when it is over [`MAX_BODY`] or the client went away.
pub async fn read_body(body: Incoming) -> Option<Bytes> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}

/// The region of a SigV4 `Authorization` header's credential scope
/// (`Credential=AKID/20240101/us-east-1/lambda/aws4_request`), so that ARNs the router makes
/// up name the region the caller signed for.
pub fn signed_region(headers: &hyper::HeaderMap) -> Option<String> {
    let auth = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    let region = scope.split('/').nth(2)?;
    (!region.is_empty()).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_signed_region_comes_from_the_credential_scope() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            hyper::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=ak/20250101/eu-west-3/lambda/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc",
            ),
        );
        assert_eq!(signed_region(&headers).as_deref(), Some("eu-west-3"));
    }

    #[test]
    fn an_unsigned_request_has_no_region() {
        assert_eq!(signed_region(&hyper::HeaderMap::new()), None);
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            hyper::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer x"),
        );
        assert_eq!(signed_region(&headers), None);
    }
}
