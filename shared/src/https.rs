//! The HTTPS client for third-party APIs (Graph API, LINE, LLM providers).
//!
//! rustls with Mozilla's root certificates compiled in (`webpki-roots`), rather than reqwest's default
//! platform verifier: that one reads and parses the system's certificate store when the client is built,
//! which was most of ai-reply's cold start (25 ms to ready, against 11 ms without it). Compiled-in roots
//! cost nothing at start and are the same on every machine; they change when the crate is updated.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What stays as it is in a path segment: RFC 3986's unreserved characters but `.` (so that no segment
/// can be read as `.` or `..`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// A path segment that cannot be one (empty, or dots only: `%2E%2E` is still `..` to a URL parser).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a URL path segment of {0} bytes is empty or dots only")]
pub struct InvalidSegment(usize);

/// The one way an outbound URL is built: `base` (configuration) then each segment percent-encoded, so
/// an id with `/`, `?`, `#` or `..` stays one segment of the path it was meant for.
pub fn endpoint(base: &str, segments: &[&str]) -> Result<String, InvalidSegment> {
    let mut url = base.trim_end_matches('/').to_owned();
    for segment in segments {
        if segment.bytes().all(|b| b == b'.') {
            return Err(InvalidSegment(segment.len()));
        }
        url.push('/');
        url.extend(utf8_percent_encode(segment, SEGMENT));
    }
    Ok(url)
}

pub fn client(connect_timeout: Duration) -> reqwest::Client {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("aws-lc-rs supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    // A preconfigured TLS setup is used as it is, so it must offer HTTP/2 itself.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .build()
        .expect("an HTTP client with a rustls configuration")
}

#[cfg(test)]
mod tests {
    use super::{InvalidSegment, endpoint};

    #[test]
    fn every_segment_is_encoded_and_none_can_climb() {
        assert_eq!(
            endpoint("https://graph.facebook.com/v24.0/", &["1048", "messages"]).unwrap(),
            "https://graph.facebook.com/v24.0/1048/messages"
        );
        assert_eq!(
            endpoint("https://g.example", &["1/../../me?x=1#f", "messages"]).unwrap(),
            "https://g.example/1%2F%2E%2E%2F%2E%2E%2Fme%3Fx%3D1%23f/messages"
        );
        assert_eq!(
            endpoint("https://g.example", &[".."]),
            Err(InvalidSegment(2))
        );
        assert_eq!(endpoint("https://g.example", &[""]), Err(InvalidSegment(0)));
    }

    fn has_root(name: &str) -> bool {
        webpki_roots::TLS_SERVER_ROOTS.iter().any(|anchor| {
            anchor
                .subject
                .windows(name.len())
                .any(|w| w == name.as_bytes())
        })
    }

    #[test]
    fn the_roots_the_platforms_chain_to_are_compiled_in() {
        // graph.facebook.com chains to DigiCert; many API hosts to Let's Encrypt (ISRG) or Google Trust Services.
        for root in ["DigiCert Global Root G2", "ISRG Root X1", "GTS Root R1"] {
            assert!(has_root(root), "{root} is missing");
        }
        let _client = super::client(std::time::Duration::from_secs(3));
    }
}
