//! Every HTTP answer the functions give (webhook-ingest, data-deletion), built here with the headers
//! that keep a browser from misreading or embedding it: `X-Content-Type-Options: nosniff` (a body is
//! only ever its declared type: the Meta handshake echoes its caller's text), a Content-Security-Policy
//! that loads nothing (the status pages' inline style aside) and forbids framing, `Referrer-Policy:
//! no-referrer` (a status URL carries its confirmation code) and `Cache-Control: no-store` (a deletion's
//! status changes, and no cache should keep it).

use lambda_http::{Body, Response};

/// What every answer carries.
const HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

fn answer(status: u16, content_type: &str, body: String) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", content_type);
    for (name, value) in HEADERS {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::Text(body))
        .expect("a valid status and static headers")
}

/// A `text/plain` answer.
pub fn text(status: u16, body: impl Into<String>) -> Response<Body> {
    answer(status, "text/plain", body.into())
}

/// An `application/json` answer.
pub fn json(status: u16, value: serde_json::Value) -> Response<Body> {
    answer(status, "application/json", value.to_string())
}

/// `{"error": message}`.
pub fn json_error(status: u16, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }))
}

/// An HTML page.
pub fn html(status: u16, page: String) -> Response<Body> {
    answer(status, "text/html; charset=utf-8", page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_answer_carries_the_safety_headers() {
        for response in [
            text(200, "1158201444"),
            json(200, serde_json::json!({ "status": "received" })),
            json_error(404, "no such request"),
            html(200, "<!doctype html>".into()),
        ] {
            let headers = response.headers();
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert_eq!(headers["referrer-policy"], "no-referrer");
            assert_eq!(headers["cache-control"], "no-store");
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(
                csp.starts_with("default-src 'none';") && csp.contains("frame-ancestors 'none'"),
                "{csp}"
            );
        }
    }
}
