//! The operations endpoints of a component that serves nothing else (the projector):
//! `GET /metrics` (the text of [`crate::exposition`]), `GET /healthz` (alive) and
//! `GET /readyz` (200 when ready, else 503 with the reason), answered like ingest's:
//! `{"status": "ok"}`, `{"status": "ready"}`, `{"status": "not_ready", "reason": "…"}`.
//!
//! Served with [`crate::serve`] like every other server of aqs, behind a
//! [`crate::HostCheckLayer`].

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::exposition::CONTENT_TYPE;

/// What the operations endpoints of a component ask it. Both are called on a blocking
/// thread, so they may read a file or take a lock.
pub trait Operations: Send + Sync + 'static {
    /// The metrics text, written with [`crate::exposition::Exposition`].
    fn metrics(&self) -> String;
    /// Ready, or why not.
    fn readiness(&self) -> Result<(), String>;
}

/// `/metrics`, `/healthz` and `/readyz` of `operations`.
pub fn router(operations: Arc<dyn Operations>) -> Router {
    let ready = Arc::clone(&operations);
    metrics_router(move || operations.metrics())
        .route(
            "/healthz",
            get(|| async { json(StatusCode::OK, "ok", None) }),
        )
        .route(
            "/readyz",
            get(move || {
                let operations = Arc::clone(&ready);
                async move {
                    match tokio::task::spawn_blocking(move || operations.readiness()).await {
                        Ok(Ok(())) => json(StatusCode::OK, "ready", None),
                        Ok(Err(reason)) => {
                            json(StatusCode::SERVICE_UNAVAILABLE, "not_ready", Some(reason))
                        }
                        Err(error) => json(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not_ready",
                            Some(format!("readiness check failed: {error}")),
                        ),
                    }
                }
            }),
        )
}

/// `/metrics` alone, answered with `render`'s text: for a server that has its own probes
/// (the dashboard port of `aqs up` serves the projector's metrics).
pub fn metrics_router(render: impl Fn() -> String + Send + Sync + 'static) -> Router {
    let render = Arc::new(render);
    Router::new().route(
        "/metrics",
        get(move || {
            let render = Arc::clone(&render);
            async move {
                match tokio::task::spawn_blocking(move || render()).await {
                    Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
                    Err(error) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("rendering the metrics failed: {error}\n"),
                    )
                        .into_response(),
                }
            }
        }),
    )
}

fn json(status: StatusCode, word: &str, reason: Option<String>) -> Response {
    let body = match reason {
        Some(reason) => serde_json::json!({"status": word, "reason": reason}),
        None => serde_json::json!({"status": word}),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;
    use crate::exposition::Exposition;

    #[derive(Default)]
    struct Fake {
        not_ready: Mutex<Option<String>>,
    }

    impl Operations for Fake {
        fn metrics(&self) -> String {
            let mut metrics = Exposition::new();
            metrics
                .gauge("aqs_fake_things_count", "Things.")
                .value(3_u64);
            metrics.into_text()
        }

        fn readiness(&self) -> Result<(), String> {
            match self.not_ready.lock().expect("lock").clone() {
                Some(reason) => Err(reason),
                None => Ok(()),
            }
        }
    }

    async fn get(router: &Router, path: &str) -> (StatusCode, String, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("answer");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).expect("utf-8"),
        )
    }

    #[tokio::test]
    async fn metrics_and_probes_are_answered() {
        let fake = Arc::new(Fake::default());
        let router = router(Arc::clone(&fake) as Arc<dyn Operations>);

        let (status, content_type, text) = get(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, CONTENT_TYPE);
        assert!(text.contains("\naqs_fake_things_count 3\n"), "{text}");

        assert_eq!(
            get(&router, "/healthz").await,
            (
                StatusCode::OK,
                "application/json".into(),
                r#"{"status":"ok"}"#.into()
            )
        );
        assert_eq!(get(&router, "/readyz").await.2, r#"{"status":"ready"}"#);

        *fake.not_ready.lock().expect("lock") = Some("store \"x\" is down".into());
        let (status, _, body) = get(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"status": "not_ready", "reason": "store \"x\" is down"})
        );
        assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
        assert_eq!(get(&router, "/nothing").await.0, StatusCode::NOT_FOUND);
    }
}
