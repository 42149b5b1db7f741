//! The broker's admin HTTP API (`admin.listener`, `http://127.0.0.1:9644` by default): the
//! plugin store.
//!
//! | request | answer |
//! | --- | --- |
//! | `PUT /v1/plugins/{name}/{version}` with the component's bytes | 201 [`PluginInfo`] (200 for an identical re-upload) |
//! | `GET /v1/plugins` | 200 `[PluginInfo]`, each with the topics that use it |
//! | `GET /v1/plugins/{name}/{version}` | 200 [`PluginInfo`] with its call and failure counters |
//! | `GET /v1/plugins/{name}/{version}/component` | 200 the component's bytes |
//! | `DELETE /v1/plugins/{name}/{version}` | 204 |
//!
//! Errors come back as 4xx/5xx with a JSON body `{"error": "..."}`; [`AdminApiError`] carries
//! that text. The HTTP client is `ureq` (blocking, plain HTTP only: the admin port is meant for
//! loopback or a trusted network), run on tokio's blocking pool so async callers never block a
//! worker thread.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Where `strom plugins` looks for the admin API unless told otherwise.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9644";

/// How long one admin request may take, connect included (an upload of a large component
/// over loopback takes milliseconds; the broker validates and compiles it before answering).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long connecting may take before the API counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes read from a response (component downloads included).
const MAX_RESPONSE_BYTES: u64 = 512 << 20;

/// A plugin as `NAME@VERSION`: both parts non-empty, of `[A-Za-z0-9._-]` (the characters
/// Kafka allows in topic names, so the reference is safe in a topic config, a URL path and
/// a file name alike).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginRef {
    pub name: String,
    pub version: String,
}

impl PluginRef {
    /// Parses `NAME@VERSION`.
    pub fn parse(s: &str) -> std::result::Result<PluginRef, String> {
        let Some((name, version)) = s.split_once('@') else {
            return Err(format!("expected NAME@VERSION, got '{s}'"));
        };
        for (what, part) in [("name", name), ("version", version)] {
            if part.is_empty() {
                return Err(format!("the plugin {what} is empty in '{s}' (expected NAME@VERSION)"));
            }
            if let Some(bad) = part
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            {
                return Err(format!(
                    "the plugin {what} '{part}' contains '{bad}'; use letters, digits, '.', '_' and '-'"
                ));
            }
        }
        if name == "." || name == ".." || version == "." || version == ".." {
            return Err(format!("'{s}' is not a valid plugin reference"));
        }
        Ok(PluginRef {
            name: name.to_string(),
            version: version.to_string(),
        })
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

impl std::str::FromStr for PluginRef {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<PluginRef, String> {
        PluginRef::parse(s)
    }
}

/// What the broker knows about an uploaded plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// The Strom world the component exports (e.g. `partitioner`, `record-interceptor`).
    pub world: String,
    /// SHA-256 of the component's bytes, lowercase hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// Where the plugin is attached (listings and descriptions only).
    #[serde(default)]
    pub topics: Vec<PluginUse>,
    /// Calls made into the plugin since the broker started (descriptions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    /// Calls that failed: traps, time budget, memory cap, invalid answers (descriptions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
    /// Time requests spent in calls into the plugin since the broker started, in seconds
    /// (descriptions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_seconds: Option<f64>,
}

impl PluginInfo {
    /// `NAME@VERSION`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// One attachment of a plugin to a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginUse {
    pub topic: String,
    /// The topic config that attaches it: `partitioner`, `interceptors.produce` or
    /// `interceptors.fetch`.
    #[serde(rename = "as")]
    pub role: String,
}

/// A failed admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminApiError {
    /// No HTTP answer: connection refused, host not found, timeout, not HTTP.
    Unreachable { url: String, message: String },
    /// The API answered with a 4xx or 5xx status; `message` is its `error` text.
    Status { status: u16, message: String },
    /// A 2xx answer that is not what the API promises.
    BadResponse { url: String, message: String },
}

impl fmt::Display for AdminApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminApiError::Unreachable { url, message } => {
                write!(f, "cannot reach the admin API at {url}: {message}")
            }
            AdminApiError::Status { status, message } if *status < 500 => write!(f, "{message}"),
            AdminApiError::Status { status, message } => {
                write!(f, "the admin API failed with HTTP {status}: {message}")
            }
            AdminApiError::BadResponse { url, message } => {
                write!(f, "unexpected answer from the admin API at {url}: {message}")
            }
        }
    }
}

impl std::error::Error for AdminApiError {}

impl AdminApiError {
    /// The HTTP status, when the API answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            AdminApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The answer to an upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    pub info: PluginInfo,
    /// False when the broker already had exactly these bytes under this name and version.
    pub created: bool,
}

/// A client of the admin HTTP API.
#[derive(Clone)]
pub struct AdminApi {
    base: String,
    agent: ureq::Agent,
}

impl fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApi").field("base", &self.base).finish()
    }
}

/// One HTTP answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl AdminApi {
    /// A client of the API at `base_url` (`http://HOST:PORT`, optionally with a path prefix;
    /// a bare `HOST:PORT` means `http://HOST:PORT`).
    pub fn new(base_url: &str) -> Result<AdminApi> {
        let base = normalize_base_url(base_url)?;
        let config = ureq::Agent::config_builder()
            // Error statuses are answers with a JSON body worth reading, not transport errors.
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // The admin API is reached directly; an HTTP_PROXY meant for the internet must
            // not capture requests to a broker on loopback.
            .proxy(None)
            .max_redirects(0)
            .build();
        Ok(AdminApi {
            base,
            agent: config.into(),
        })
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `PUT /v1/plugins/{name}/{version}`: stores a component under a name and version.
    pub async fn upload_plugin(&self, plugin: &PluginRef, component: Vec<u8>) -> Result<Uploaded> {
        let path = plugin_path(plugin);
        let answer = self.request("PUT", &path, Some(component)).await?;
        let created = match answer.status {
            201 => true,
            200 => false,
            _ => return Err(self.status_error(answer).into()),
        };
        Ok(Uploaded {
            info: self.json(&path, &answer.body)?,
            created,
        })
    }

    /// `GET /v1/plugins`: every uploaded plugin and where it is attached.
    pub async fn list_plugins(&self) -> Result<Vec<PluginInfo>> {
        let path = "/v1/plugins".to_string();
        let answer = self.request("GET", &path, None).await?;
        if answer.status != 200 {
            return Err(self.status_error(answer).into());
        }
        self.json(&path, &answer.body)
    }

    /// `GET /v1/plugins/{name}/{version}`: one plugin, with its call counters.
    pub async fn describe_plugin(&self, plugin: &PluginRef) -> Result<PluginInfo> {
        let path = plugin_path(plugin);
        let answer = self.request("GET", &path, None).await?;
        if answer.status != 200 {
            return Err(self.status_error(answer).into());
        }
        self.json(&path, &answer.body)
    }

    /// `GET /v1/plugins/{name}/{version}/component`: the component's bytes.
    pub async fn download_plugin(&self, plugin: &PluginRef) -> Result<Vec<u8>> {
        let path = format!("{}/component", plugin_path(plugin));
        let answer = self.request("GET", &path, None).await?;
        if answer.status != 200 {
            return Err(self.status_error(answer).into());
        }
        Ok(answer.body)
    }

    /// `DELETE /v1/plugins/{name}/{version}`: removes a plugin no topic uses.
    pub async fn delete_plugin(&self, plugin: &PluginRef) -> Result<()> {
        let path = plugin_path(plugin);
        let answer = self.request("DELETE", &path, None).await?;
        match answer.status {
            200 | 204 => Ok(()),
            _ => Err(self.status_error(answer).into()),
        }
    }

    /// What the broker has spent so far, from `GET /metrics`: its process's CPU time (user
    /// and system) and the time its requests spent in plugin calls.
    pub async fn broker_costs(&self) -> Result<BrokerCosts> {
        let path = "/metrics".to_string();
        let answer = self.request("GET", &path, None).await?;
        if answer.status != 200 {
            return Err(self.status_error(answer).into());
        }
        let text = String::from_utf8_lossy(&answer.body);
        let value = |line: &str| line.rsplit_once(' ').and_then(|(_, v)| v.trim().parse::<f64>().ok());
        let cpu_seconds = text
            .lines()
            .find(|line| line.starts_with("process_cpu_seconds_total "))
            .and_then(value)
            .ok_or_else(|| anyhow::anyhow!("{}{path} has no process_cpu_seconds_total", self.base))?;
        let plugin_call_seconds = text
            .lines()
            .filter(|line| line.starts_with("strom_plugin_call_seconds_total{"))
            .filter_map(value)
            .sum();
        Ok(BrokerCosts {
            cpu_seconds,
            plugin_call_seconds,
        })
    }

    /// Sends one request on the blocking pool and reads the whole answer.
    async fn request(&self, method: &'static str, path: &str, body: Option<Vec<u8>>) -> Result<Answer> {
        let agent = self.agent.clone();
        let url = format!("{}{}", self.base, path);
        let base = self.base.clone();
        tokio::task::spawn_blocking(move || {
            let sent = match (method, body) {
                ("PUT", Some(body)) => agent
                    .put(&url)
                    .header("content-type", "application/wasm")
                    .send(&body[..]),
                ("GET", _) => agent.get(&url).call(),
                ("DELETE", _) => agent.delete(&url).call(),
                (method, _) => unreachable!("admin API request {method} without its body"),
            };
            let unreachable = |e: ureq::Error| AdminApiError::Unreachable {
                url: base.clone(),
                message: transport_message(e),
            };
            let mut response = sent.map_err(unreachable)?;
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_RESPONSE_BYTES)
                .read_to_vec()
                .map_err(unreachable)?;
            Ok::<_, AdminApiError>(Answer { status, body })
        })
        .await
        .context("the admin API request was cancelled")?
        .map_err(anyhow::Error::new)
    }

    /// The error of a non-success answer: the `error` text of its JSON body, else the body.
    fn status_error(&self, answer: Answer) -> AdminApiError {
        AdminApiError::Status {
            status: answer.status,
            message: error_text(answer.status, &answer.body),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T> {
        serde_json::from_slice(body).map_err(|e| {
            anyhow!(AdminApiError::BadResponse {
                url: format!("{}{}", self.base, path),
                message: format!("{e} in {:?}", String::from_utf8_lossy(&body[..body.len().min(200)])),
            })
        })
    }
}

fn plugin_path(plugin: &PluginRef) -> String {
    // PluginRef admits only URL-safe characters, so no escaping is needed.
    format!("/v1/plugins/{}/{}", plugin.name, plugin.version)
}

/// `http://host:port[/prefix]` without a trailing slash; `host:port` gets `http://`.
fn normalize_base_url(url: &str) -> Result<String> {
    let url = url.trim();
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let Some(rest) = with_scheme.strip_prefix("http://") else {
        bail!("the admin API URL '{url}' must start with http:// (the admin port speaks plain HTTP)");
    };
    if rest.is_empty() || rest.starts_with('/') {
        bail!("the admin API URL '{url}' has no host");
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

/// A readable reason for a request that got no HTTP answer.
fn transport_message(e: ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Protocol(p) => format!("not an HTTP answer ({p})"),
        other => other.to_string(),
    }
}

/// The `error` field of a JSON error body, else the body's text, else the status.
fn error_text(status: u16, body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(serde_json::Value::String(text)) = map.get("error") {
            return text.clone();
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        format!("HTTP {status} without a message")
    } else {
        text
    }
}

/// Cost counters of a broker (see [`AdminApi::broker_costs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrokerCosts {
    pub cpu_seconds: f64,
    /// Summed over all plugins.
    pub plugin_call_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_references_parse() {
        assert_eq!(
            PluginRef::parse("murmur2@1").unwrap(),
            PluginRef {
                name: "murmur2".into(),
                version: "1".into()
            }
        );
        let r = PluginRef::parse("json-field_partitioner@1.2.0-rc.1").unwrap();
        assert_eq!(
            (r.name.as_str(), r.version.as_str()),
            ("json-field_partitioner", "1.2.0-rc.1")
        );
        assert_eq!(r.to_string(), "json-field_partitioner@1.2.0-rc.1");
        assert_eq!("a@b".parse::<PluginRef>().unwrap().to_string(), "a@b");
    }

    #[test]
    fn malformed_plugin_references_are_refused_with_a_reason() {
        assert_eq!(
            PluginRef::parse("murmur2").unwrap_err(),
            "expected NAME@VERSION, got 'murmur2'"
        );
        assert_eq!(
            PluginRef::parse("@1").unwrap_err(),
            "the plugin name is empty in '@1' (expected NAME@VERSION)"
        );
        assert_eq!(
            PluginRef::parse("a@").unwrap_err(),
            "the plugin version is empty in 'a@' (expected NAME@VERSION)"
        );
        assert_eq!(
            PluginRef::parse("a@1@2").unwrap_err(),
            "the plugin version '1@2' contains '@'; use letters, digits, '.', '_' and '-'"
        );
        assert!(PluginRef::parse("a/b@1").unwrap_err().contains("contains '/'"));
        assert!(PluginRef::parse("a@1 ").unwrap_err().contains("contains ' '"));
        assert!(PluginRef::parse("é@1").is_err());
        assert!(PluginRef::parse("..@1").is_err());
        assert!(PluginRef::parse("a@.").is_err());
    }

    #[test]
    fn base_urls_are_normalized() {
        assert_eq!(
            normalize_base_url("http://127.0.0.1:9644").unwrap(),
            "http://127.0.0.1:9644"
        );
        assert_eq!(normalize_base_url("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(normalize_base_url("h:1").unwrap(), "http://h:1");
        assert_eq!(normalize_base_url(" http://h:1/admin/ ").unwrap(), "http://h:1/admin");
        assert!(normalize_base_url("https://h:1")
            .unwrap_err()
            .to_string()
            .contains("must start with http://"));
        assert!(normalize_base_url("http://").is_err());
    }

    #[test]
    fn error_bodies_give_their_error_text() {
        assert_eq!(
            error_text(409, br#"{"error":"plugin x@1 is used by topic t"}"#),
            "plugin x@1 is used by topic t"
        );
        assert_eq!(error_text(404, b"no such route\n"), "no such route");
        assert_eq!(error_text(500, b""), "HTTP 500 without a message");
        assert_eq!(error_text(400, br#"{"message":"m"}"#), r#"{"message":"m"}"#);
    }

    #[test]
    fn errors_read_well() {
        let e = AdminApiError::Status {
            status: 409,
            message: "plugin x@1 is used by topic t".into(),
        };
        assert_eq!(e.to_string(), "plugin x@1 is used by topic t");
        assert_eq!(e.status(), Some(409));
        let e = AdminApiError::Status {
            status: 503,
            message: "busy".into(),
        };
        assert_eq!(e.to_string(), "the admin API failed with HTTP 503: busy");
        let e = AdminApiError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            message: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach the admin API at http://127.0.0.1:1: Connection refused (os error 111)"
        );
        assert_eq!(e.status(), None);
    }

    #[test]
    fn plugin_info_reads_the_api_shape() {
        let listed: Vec<PluginInfo> = serde_json::from_str(
            r#"[{"name":"m","version":"1","world":"partitioner","sha256":"ab","size":10,
                 "topics":[{"topic":"t","as":"partitioner"}]}]"#,
        )
        .unwrap();
        assert_eq!(listed[0].reference(), "m@1");
        assert_eq!(
            listed[0].topics,
            vec![PluginUse {
                topic: "t".into(),
                role: "partitioner".into()
            }]
        );
        assert_eq!(listed[0].calls, None);
        let uploaded: PluginInfo =
            serde_json::from_str(r#"{"name":"m","version":"1","world":"partitioner","sha256":"ab","size":10}"#)
                .unwrap();
        assert!(uploaded.topics.is_empty());
        let described: PluginInfo = serde_json::from_str(
            r#"{"name":"m","version":"1","world":"partitioner","sha256":"ab","size":10,"topics":[],
                "calls":7,"failures":1}"#,
        )
        .unwrap();
        assert_eq!((described.calls, described.failures), (Some(7), Some(1)));
    }

    /// A one-shot HTTP server on loopback that answers `status` with a JSON `body` and hands
    /// back the request it read.
    fn serve_once(status: &str, body: &str) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 65536];
            // Read the head, then as many body bytes as Content-Length says.
            loop {
                let n = s.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            s.write_all(response.as_bytes()).unwrap();
            request
        });
        (url, handle)
    }

    #[tokio::test]
    async fn upload_puts_the_bytes_and_reads_the_answer() {
        let (url, server) = serve_once(
            "201 Created",
            r#"{"name":"m","version":"1","world":"partitioner","sha256":"abcd","size":3}"#,
        );
        let api = AdminApi::new(&url).unwrap();
        let plugin = PluginRef::parse("m@1").unwrap();
        let uploaded = api.upload_plugin(&plugin, vec![0, 97, 115]).await.unwrap();
        assert!(uploaded.created);
        assert_eq!(uploaded.info.world, "partitioner");
        assert_eq!(uploaded.info.size, 3);
        let request = server.join().unwrap();
        let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&request[..head_end]);
        assert!(head.starts_with("PUT /v1/plugins/m/1 HTTP/1.1\r\n"), "{head}");
        assert!(head.to_lowercase().contains("content-length: 3"), "{head}");
        assert_eq!(&request[head_end + 4..], &[0, 97, 115]);
    }

    #[tokio::test]
    async fn error_answers_carry_the_server_text() {
        let (url, server) = serve_once("409 Conflict", r#"{"error":"plugin x@1 is used by topic t"}"#);
        let api = AdminApi::new(&url).unwrap();
        let err = api.delete_plugin(&PluginRef::parse("x@1").unwrap()).await.unwrap_err();
        assert_eq!(err.to_string(), "plugin x@1 is used by topic t");
        assert_eq!(err.downcast_ref::<AdminApiError>().unwrap().status(), Some(409));
        let request = server.join().unwrap();
        assert!(request.starts_with(b"DELETE /v1/plugins/x/1 HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let api = AdminApi::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = api.list_plugins().await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot reach the admin API at http://127.0.0.1:{port}: ")),
            "{err}"
        );
    }
}
