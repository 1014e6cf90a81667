//! Everything the router does not serve goes to moto as it came (method, path, query,
//! headers, body) and comes back as moto sent it, less the hop-by-hop headers.
//!
//! One exception in how, not what: DynamoDB requests go to moto one at a time. DynamoDB
//! applies a conditional write atomically; moto's threaded server reads the item, checks the
//! condition and writes it back without a lock, so two concurrent conditional writes can both
//! pass. Serialising them restores the guarantee pairscale's lock and fenced commits rely on.

use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderName, CONNECTION};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::RouterError;
use crate::http::{self, Body};

/// Headers that describe one connection, not the message (RFC 9110, 7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(Debug, Clone)]
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    /// `http://host:port`, no path.
    base: Uri,
    /// Held while one DynamoDB request is in moto (see the module docs).
    dynamodb: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// The `X-Amz-Target` prefix of every DynamoDB operation.
const DYNAMODB_TARGET: &str = "DynamoDB_20120810.";

fn is_dynamodb(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(DYNAMODB_TARGET))
}

impl Proxy {
    pub fn new(moto: &str) -> Result<Self, RouterError> {
        let bad = |reason| RouterError::MotoUrl {
            url: moto.to_owned(),
            reason,
        };
        let base: Uri = moto
            .trim_end_matches('/')
            .parse()
            .map_err(|_| bad("not a URL"))?;
        if base.scheme_str() != Some("http") {
            return Err(bad("only http:// is supported"));
        }
        if base.authority().is_none() {
            return Err(bad("no host"));
        }
        if !matches!(base.path(), "" | "/") || base.query().is_some() {
            return Err(bad("give only scheme, host and port"));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            client,
            base,
            dynamodb: Default::default(),
        })
    }

    pub fn base(&self) -> &Uri {
        &self.base
    }

    pub async fn forward(&self, req: Request<Body>) -> Response<Body> {
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let mut uri = hyper::http::uri::Parts::default();
        uri.scheme = self.base.scheme().cloned();
        uri.authority = self.base.authority().cloned();
        uri.path_and_query = path.parse().ok();
        parts.uri = match Uri::from_parts(uri) {
            Ok(uri) => uri,
            Err(error) => return http::control_error(StatusCode::BAD_REQUEST, error),
        };
        strip_hop_by_hop(&mut parts.headers);
        let method = parts.method.clone();
        // moto answers only once the operation is done, so holding the guard until the whole
        // response is in covers the write.
        let guard = if is_dynamodb(&parts.headers) {
            Some(self.dynamodb.lock().await)
        } else {
            None
        };
        let result = match self.client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                match body.collect().await {
                    Ok(collected) => Ok((parts, collected.to_bytes())),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        drop(guard);
        match result {
            Ok((mut parts, bytes)) => {
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, http::full(bytes))
            }
            Err(error) => {
                tracing::warn!(%method, %path, error = %error, "moto did not answer");
                http::control_error(
                    StatusCode::BAD_GATEWAY,
                    format!("moto at {} did not answer: {error}", self.base),
                )
            }
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonSSM.GetParameter"),
        );
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-amz-target"));
    }

    #[test]
    fn the_moto_url_is_scheme_host_and_port_only() {
        Proxy::new("http://127.0.0.1:5000").unwrap();
        Proxy::new("http://127.0.0.1:5000/").unwrap();
        assert!(Proxy::new("https://127.0.0.1:5000").is_err());
        assert!(Proxy::new("http://127.0.0.1:5000/prefix").is_err());
        assert!(Proxy::new("127.0.0.1:5000").is_err());
    }
}
