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

/// An RFC 9457 `application/problem+json` answer: `title` says what went wrong in words a person
/// understands, `detail` this occurrence (never message text or a token).
pub fn problem(status: u16, title: &str, detail: &str) -> Response<Body> {
    problem_with(status, title, detail, serde_json::Map::new())
}

/// A problem with extension members (`field` of a 422, say).
pub fn problem_with(
    status: u16,
    title: &str,
    detail: &str,
    extensions: serde_json::Map<String, serde_json::Value>,
) -> Response<Body> {
    let mut body = serde_json::Map::new();
    body.insert("type".into(), "about:blank".into());
    body.insert("title".into(), title.into());
    body.insert("status".into(), status.into());
    body.insert("detail".into(), detail.into());
    body.extend(extensions);
    answer(
        status,
        "application/problem+json",
        serde_json::Value::Object(body).to_string(),
    )
}

/// An HTML page.
pub fn html(status: u16, page: String) -> Response<Body> {
    answer(status, "text/html; charset=utf-8", page)
}

/// A page answered with its own Content-Security-Policy (one that must load a script, say), the other
/// safety headers as every answer has them.
pub fn html_with_policy(status: u16, page: String, policy: &'static str) -> Response<Body> {
    let mut response = html(status, page);
    response.headers_mut().insert(
        "content-security-policy",
        lambda_http::http::HeaderValue::from_static(policy),
    );
    response
}

/// A redirect (302) to `location`.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = answer(302, "text/plain", String::new());
    if let Ok(value) = lambda_http::http::HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(lambda_http::http::header::LOCATION, value);
    }
    response
}

/// Text escaped for HTML: anything from outside (an address bar, a platform's names) goes through it.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A plain page a person reads: `body` is HTML already (escape what goes in it).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;\
         padding:0 1rem;line-height:1.5;color:#111;background:#fff}}table{{border-collapse:collapse}}\
         th,td{{text-align:left;padding:.25rem .75rem .25rem 0}}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        title = escape(title),
    )
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
            problem(
                409,
                "The reply window is closed",
                "closed at 2026-01-01T00:00:00Z",
            ),
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

    #[test]
    fn a_problem_is_rfc_9457() {
        let response = problem(404, "Not found", "no conversation conv_x");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let Body::Text(text) = response.body() else {
            panic!("a text body")
        };
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["status"], 404);
        assert_eq!(value["title"], "Not found");
        assert_eq!(value["type"], "about:blank");
    }
}
