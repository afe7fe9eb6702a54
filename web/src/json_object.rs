//! Request bodies are JSON objects. serde decodes a JSON array into a
//! struct field by field, in order, so without this check `["never"]`
//! sent to `PATCH /datastores/{id}` would set its first field, and `[]` an
//! empty change. A JSON body whose value is not an object is refused here,
//! before any handler, with 422 and a message; what is not JSON at all is
//! left to the handler's decoder (400), as is an empty body (the routes
//! that take an optional body accept it).

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::MAX_BODY;

/// Whether the request says its body is JSON.
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// What is wrong with `body`, a JSON request body, if anything.
pub(crate) fn not_an_object(body: &[u8]) -> Option<&'static str> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None | Some(b'{') => None,
        Some(_) => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .map(|_| "the request body must be a JSON object"),
    }
}

/// The middleware: check the JSON body of a POST, PUT or PATCH.
pub(crate) async fn objects_only(req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) || !is_json(&req) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the request body is larger than {MAX_BODY} bytes"),
            )
            .into_response()
        }
    };
    if let Some(m) = not_an_object(&bytes) {
        return ApiError::invalid(m).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_pass() {
        for ok in [&b"{}"[..], b"  {\"a\": 1}", b"", b" \n", b"{nope", b"nope"] {
            assert_eq!(not_an_object(ok), None, "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"[]"[..],
            b"[\"never\"]",
            b"null",
            b"\"x\"",
            b" 5",
            b"true",
        ] {
            assert!(
                not_an_object(bad).is_some(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
