//! [`HostCheckLayer`]: the check of [`crate::host`] on every request of a router.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use tower::{Layer, Service};

use crate::host::{AllowedHosts, misdirected};

/// The host a request names: the URI's authority (absolute form) or else `Host`.
fn requested_host<B>(request: &Request<B>) -> Result<Option<&str>, ()> {
    if let Some(authority) = request.uri().authority() {
        return Ok(Some(authority.as_str()));
    }
    match request.headers().get(header::HOST) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| ()),
    }
}

/// Refuses requests that name a host the server does not answer to (see [`crate::host`]);
/// counts them.
#[derive(Debug, Clone)]
pub struct HostCheckLayer {
    allowed: Arc<AllowedHosts>,
    /// The setting an operator extends to admit a name, shown in the refusal.
    setting: &'static str,
    refused: Arc<AtomicU64>,
}

impl HostCheckLayer {
    /// `setting` is the variable that lists the allowed names, e.g. `AQS_INGEST_ALLOWED_HOSTS`.
    pub fn new(allowed: AllowedHosts, setting: &'static str) -> Self {
        Self {
            allowed: Arc::new(allowed),
            setting,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The counter of refused requests, to render with a server's metrics.
    pub fn refused_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.refused)
    }
}

impl<S> Layer<S> for HostCheckLayer {
    type Service = HostCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HostCheck {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`HostCheckLayer`].
#[derive(Debug, Clone)]
pub struct HostCheck<S> {
    inner: S,
    layer: HostCheckLayer,
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, B> Service<Request<B>> for HostCheck<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxedResponse<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let refusal = match requested_host(&request) {
            Ok(host) if self.layer.allowed.allows(host) => None,
            Ok(host) => Some(host.unwrap_or_default().to_owned()),
            Err(()) => Some("(not text)".to_owned()),
        };
        match refusal {
            None => Box::pin(self.inner.call(request)),
            Some(host) => {
                self.layer.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(host, "request for a host not served here refused");
                let response = misdirected_response(&host, self.layer.setting);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

fn misdirected_response(host: &str, setting: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(misdirected(host, setting)));
    *response.status_mut() = StatusCode::MISDIRECTED_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
