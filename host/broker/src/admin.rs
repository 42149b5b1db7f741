//! The admin HTTP API (`admin.listener`): plugin upload, listing, inspection and
//! deletion, and Prometheus metrics at `/metrics`. JSON in and out; errors are `{"error": "..."}` with a fitting status.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::broker::Broker;
use crate::plugins::{self, Refusal};

/// The largest component accepted (Python and JavaScript components run to tens of MB).
const PLUGIN_BYTES_MAX: usize = 256 << 20;

pub async fn serve(broker: Arc<Broker>, listener: TcpListener) {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/plugins", get(list))
        .route("/v1/plugins/{name}/{version}", get(describe).put(upload).delete(delete))
        .route("/v1/plugins/{name}/{version}/component", get(component))
        .layer(DefaultBodyLimit::max(PLUGIN_BYTES_MAX))
        .with_state(Arc::clone(&broker));
    let shutdown = async move { broker.shutdown_started().await };
    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "admin API stopped");
    }
}

async fn metrics(State(broker): State<Arc<Broker>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&broker),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn refusal(r: Refusal) -> Response {
    error(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        r.message,
    )
}

fn summary(broker: &Broker, plugin: &strom_metadata::PluginImage) -> Value {
    let image = broker.metadata.image();
    let topics: Vec<Value> = plugins::users(&image, &plugin.id())
        .into_iter()
        .map(|(t, how)| json!({ "topic": t, "as": how }))
        .collect();
    json!({
        "name": plugin.name,
        "version": plugin.version,
        "world": plugin.world,
        "sha256": plugin.sha256,
        "size": plugin.bytes.len(),
        "topics": topics,
    })
}

async fn list(State(broker): State<Arc<Broker>>) -> Response {
    let image = broker.metadata.image();
    Json(image.plugins().map(|p| summary(&broker, p)).collect::<Vec<_>>()).into_response()
}

async fn describe(State(broker): State<Arc<Broker>>, Path((name, version)): Path<(String, String)>) -> Response {
    let image = broker.metadata.image();
    let Some(plugin) = image.plugin(&name, &version) else {
        return error(StatusCode::NOT_FOUND, format!("plugin {name}@{version} does not exist"));
    };
    let mut body = summary(&broker, plugin);
    let stats = broker.plugins.stats(&plugin.id());
    body["calls"] = json!(stats.calls);
    body["failures"] = json!(stats.failures);
    body["call_seconds"] = json!(stats.busy.as_secs_f64());
    Json(body).into_response()
}

async fn component(State(broker): State<Arc<Broker>>, Path((name, version)): Path<(String, String)>) -> Response {
    match broker.metadata.image().plugin(&name, &version) {
        Some(plugin) => ([(header::CONTENT_TYPE, "application/wasm")], plugin.bytes.to_vec()).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("plugin {name}@{version} does not exist")),
    }
}

async fn upload(
    State(broker): State<Arc<Broker>>,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let worker = Arc::clone(&broker);
    let (n, v) = (name.clone(), version.clone());
    // Compiling a component takes from milliseconds to seconds: not on the async threads.
    let outcome =
        tokio::task::spawn_blocking(move || worker.plugins.upload(&worker.metadata, &n, &v, body.to_vec())).await;
    match outcome {
        Ok(Ok(uploaded)) => {
            let status = if uploaded.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let image = broker.metadata.image();
            let size = image.plugin(&name, &version).map(|p| p.bytes.len()).unwrap_or(0);
            (status, Json(json!({ "name": name, "version": version, "world": uploaded.world, "sha256": uploaded.sha256, "size": size })))
                .into_response()
        }
        Ok(Err(r)) => refusal(r),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("upload task failed: {e}")),
    }
}

async fn delete(State(broker): State<Arc<Broker>>, Path((name, version)): Path<(String, String)>) -> Response {
    match broker.plugins.delete(&broker.config, &broker.metadata, &name, &version) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => refusal(r),
    }
}
