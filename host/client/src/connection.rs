//! One TCP connection to one broker: framing, correlation ids, version negotiation.
//!
//! A frame is a 4-byte big-endian size followed by a header and a body. The request header
//! version follows from the API key and version ([`ApiKey::request_header_version`]), and so
//! does the response header version — `kafka-protocol` already encodes Kafka's one exception,
//! that ApiVersions responses always use header v0 so that a client can read the broker's
//! answer even when it asked in a version the broker does not speak.
//!
//! Requests are pipelined: [`Connection::submit`] writes a request and returns a
//! [`PendingResponse`] at once, so a caller may keep several requests in flight. A reader task
//! owns the read half of the socket and hands each response to the oldest outstanding request;
//! Kafka answers the requests of one connection in order, so the correlation id of every
//! response must match that oldest request, and a mismatch closes the connection. Responses are
//! decoded by the task that awaits them, not by the reader task, so decoding a large fetch does
//! not hold up reading the next response.
//!
//! When the socket fails, every outstanding and every later request fails with the same error;
//! [`Client`](crate::Client) then drops the connection from its cache and reconnects.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error;

/// How long to wait for a TCP connection before giving up on a broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Responses larger than this are treated as garbage: the usual cause is a peer that is not a
/// Kafka broker (an HTTP server's `HTTP/1.1` reads as a 1.2 GB size).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// The ApiVersions version we ask in first; brokers that do not speak it answer
/// UNSUPPORTED_VERSION in v0 format and we ask again in v0.
const API_VERSIONS_FIRST_TRY: i16 = 3;

/// The Kafka error code UNSUPPORTED_VERSION.
const UNSUPPORTED_VERSION: i16 = 35;

/// The highest version this client sends for an API, where lower than what `kafka-protocol`
/// can encode. Produce v13 and Fetch v13+ address topics by id instead of by name; staying
/// below keeps the producer and consumer independent of topic ids.
fn client_max_version(key: ApiKey) -> Option<i16> {
    match key {
        ApiKey::Produce => Some(12),
        ApiKey::Fetch => Some(12),
        _ => None,
    }
}

type Reply = std::result::Result<Bytes, String>;

/// The connection to a broker could not be opened or broke. Unlike a Kafka error code, this
/// says nothing about the request: the same request may succeed on a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError(String);

impl ConnectionError {
    fn error(message: String) -> anyhow::Error {
        anyhow::Error::new(ConnectionError(message))
    }

    /// Whether `error` (or one of its causes) is a connection failure.
    pub fn is_cause_of(error: &anyhow::Error) -> bool {
        error.chain().any(|cause| cause.is::<ConnectionError>())
    }
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectionError {}

/// A request written to the socket whose response has not arrived yet.
struct Waiter {
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    reply: oneshot::Sender<Reply>,
}

/// Requests awaiting a response, oldest first, and whether the connection has failed.
#[derive(Default)]
struct Pending {
    waiters: VecDeque<Waiter>,
    /// Set once the connection has failed; every later request fails with this message.
    closed: Option<String>,
}

impl Pending {
    /// Marks the connection failed and fails every outstanding request.
    fn close(&mut self, reason: String) {
        if self.closed.is_none() {
            self.closed = Some(reason.clone());
        }
        for waiter in self.waiters.drain(..) {
            let _ = waiter.reply.send(Err(reason.clone()));
        }
    }
}

struct Writer {
    stream: OwnedWriteHalf,
    next_correlation_id: i32,
}

/// An open connection to one broker, with the API versions negotiated on it.
pub struct Connection {
    addr: String,
    client_id: StrBytes,
    writer: tokio::sync::Mutex<Writer>,
    pending: Arc<Mutex<Pending>>,
    /// The broker's supported version range per API key, from ApiVersions.
    versions: OnceLock<HashMap<i16, VersionRange>>,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The response to a request that has been written; await it with [`PendingResponse::wait`].
pub struct PendingResponse<T> {
    reply: oneshot::Receiver<Reply>,
    api_key: ApiKey,
    version: i16,
    addr: String,
    _response: std::marker::PhantomData<fn() -> T>,
}

impl<T: Decodable> PendingResponse<T> {
    /// Waits for the response and decodes it.
    pub async fn wait(self) -> Result<T> {
        let (api_key, version) = (self.api_key, self.version);
        let addr = self.addr.clone();
        let mut body = self.take_raw().await?;
        T::decode(&mut body, version)
            .with_context(|| format!("cannot decode {api_key:?} v{version} response from broker at {addr}"))
    }
}

impl<T> PendingResponse<T> {
    /// Waits for the response body (after the response header), undecoded.
    pub async fn take_raw(self) -> Result<Bytes> {
        match self.reply.await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(reason)) => Err(ConnectionError::error(format!(
                "{:?} request to broker at {} failed: {reason}",
                self.api_key, self.addr
            ))),
            Err(_) => Err(ConnectionError::error(format!(
                "{:?} request to broker at {} failed: connection dropped",
                self.api_key, self.addr
            ))),
        }
    }
}

impl Connection {
    /// Opens a connection to `addr` (`host:port`) and negotiates API versions with ApiVersions.
    ///
    /// An unreachable broker gives `cannot reach broker at ADDR: <OS error>` as one message, so
    /// it reads the same however the caller prints errors.
    pub async fn connect(addr: &str, client_id: &str) -> Result<Arc<Connection>> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(ConnectionError::error(format!("cannot reach broker at {addr}: {e}"))),
            Err(_) => {
                return Err(ConnectionError::error(format!(
                    "cannot reach broker at {addr}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        };
        // Every frame is written whole; Nagle's algorithm could only delay it.
        stream.set_nodelay(true).ok();
        let (read, write) = stream.into_split();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let reader = tokio::spawn(read_loop(read, pending.clone(), addr.to_string()));
        let conn = Arc::new(Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            writer: tokio::sync::Mutex::new(Writer {
                stream: write,
                next_correlation_id: 1,
            }),
            pending,
            versions: OnceLock::new(),
            reader,
        });
        let versions = conn
            .negotiate_versions()
            .await
            .with_context(|| format!("ApiVersions handshake with broker at {addr} failed"))?;
        let _ = conn.versions.set(versions);
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection has failed; a failed connection never recovers.
    pub fn is_closed(&self) -> bool {
        self.pending.lock().expect("pending lock").closed.is_some()
    }

    /// The version range the broker supports for `key`, if it supports the API at all.
    pub fn broker_versions(&self, key: ApiKey) -> Option<VersionRange> {
        self.versions.get()?.get(&(key as i16)).copied()
    }

    /// The version to send `R` in: the highest one the broker, `kafka-protocol` and this
    /// client all support.
    pub fn version<R: Request>(&self) -> Result<i16> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        let Some(broker) = self.broker_versions(key) else {
            bail!("broker at {} does not support {key:?} requests", self.addr);
        };
        let mut ours = R::VERSIONS;
        if let Some(max) = client_max_version(key) {
            ours.max = ours.max.min(max);
        }
        let common = broker.intersect(&ours);
        if common.is_empty() {
            bail!(
                "broker at {} supports {key:?} versions {broker}, this client {ours}: no common version",
                self.addr
            );
        }
        Ok(common.max)
    }

    /// Sends `request` at the negotiated version and waits for the response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let version = self.version::<R>()?;
        self.submit(request, version).await?.wait().await
    }

    /// Writes `request` at `version` and returns without waiting for the response, so that
    /// several requests can be in flight on one connection. Responses arrive in request order.
    ///
    /// Not cancel-safe: dropping the future while it writes leaves a partial frame on the
    /// socket, so the connection is then marked failed.
    pub async fn submit<R: Request>(&self, request: &R, version: i16) -> Result<PendingResponse<R::Response>> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        let reply = self.write(key, request, version, true).await?;
        Ok(PendingResponse {
            reply: reply.expect("a reply channel was requested"),
            api_key: key,
            version,
            addr: self.addr.clone(),
            _response: std::marker::PhantomData,
        })
    }

    /// Writes a request the broker will not answer (a Produce with acks=0).
    pub async fn send_without_response<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        self.write(key, request, version, false).await?;
        Ok(())
    }

    async fn write<R: Request>(
        &self,
        key: ApiKey,
        request: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<Option<oneshot::Receiver<Reply>>> {
        // Encode before taking the write lock so that concurrent callers encode in parallel;
        // the correlation id is patched in under the lock.
        let mut frame = encode_frame(key, request, version, &self.client_id)?;
        let mut writer = self.writer.lock().await;
        let correlation_id = writer.next_correlation_id;
        writer.next_correlation_id = correlation_id.wrapping_add(1).max(1);
        // size (4) + api key (2) + api version (2), in every request header version.
        frame[8..12].copy_from_slice(&correlation_id.to_be_bytes());

        // Register before writing: the response may arrive before `write_all` returns.
        let reply = {
            let mut pending = self.pending.lock().expect("pending lock");
            if let Some(reason) = &pending.closed {
                return Err(ConnectionError::error(format!(
                    "connection to broker at {} failed: {reason}",
                    self.addr
                )));
            }
            if expect_response {
                let (tx, rx) = oneshot::channel();
                pending.waiters.push_back(Waiter {
                    correlation_id,
                    api_key: key,
                    api_version: version,
                    reply: tx,
                });
                Some(rx)
            } else {
                None
            }
        };

        let mut guard = PoisonOnDrop {
            pending: &self.pending,
            armed: true,
        };
        let result = writer.stream.write_all(&frame).await;
        guard.armed = false;
        if let Err(e) = result {
            let reason = format!("write failed: {e}");
            self.pending.lock().expect("pending lock").close(reason.clone());
            return Err(ConnectionError::error(format!(
                "connection to broker at {} failed: {reason}",
                self.addr
            )));
        }
        Ok(reply)
    }

    /// ApiVersions: ask in v3; a broker that does not speak v3 answers UNSUPPORTED_VERSION with
    /// a v0 body listing what it does speak, and we ask again at the version it names (or v0).
    async fn negotiate_versions(&self) -> Result<HashMap<i16, VersionRange>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strom-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = API_VERSIONS_FIRST_TRY;
        let mut body = self.submit(&request, version).await?.take_raw().await?;
        if body.len() >= 2 && i16::from_be_bytes([body[0], body[1]]) == UNSUPPORTED_VERSION {
            let v0 = ApiVersionsResponse::decode(&mut body, 0)
                .context("cannot decode UNSUPPORTED_VERSION answer to ApiVersions v3")?;
            version = v0
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                .map(|k| k.max_version.min(API_VERSIONS_FIRST_TRY - 1))
                .filter(|v| *v >= 0)
                .unwrap_or(0);
            body = self.submit(&request, version).await?.take_raw().await?;
        }
        let response = ApiVersionsResponse::decode(&mut body, version)
            .with_context(|| format!("cannot decode ApiVersions v{version} response"))?;
        error::check(response.error_code, None).context("broker refused ApiVersions")?;
        Ok(response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect())
    }
}

/// Marks the connection failed if a write is abandoned half-way (its future was dropped).
struct PoisonOnDrop<'a> {
    pending: &'a Mutex<Pending>,
    armed: bool,
}

impl Drop for PoisonOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Ok(mut pending) = self.pending.lock() {
                pending.close("a request was cancelled while being written".to_string());
            }
        }
    }
}

/// Encodes size prefix, header (with correlation id 0, patched later) and body.
fn encode_frame<R: Encodable>(key: ApiKey, request: &R, version: i16, client_id: &StrBytes) -> Result<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(0)
        .with_client_id(Some(client_id.clone()));
    let header_version = key.request_header_version(version);
    let size = header.compute_size(header_version)? + request.compute_size(version)?;
    let mut frame = BytesMut::with_capacity(4 + size);
    frame.put_i32(size as i32);
    header
        .encode(&mut frame, header_version)
        .with_context(|| format!("cannot encode {key:?} v{version} request header"))?;
    request
        .encode(&mut frame, version)
        .with_context(|| format!("cannot encode {key:?} v{version} request"))?;
    debug_assert_eq!(frame.len(), 4 + size);
    Ok(frame)
}

/// Reads responses and hands each to the oldest outstanding request until the socket fails.
async fn read_loop(read: OwnedReadHalf, pending: Arc<Mutex<Pending>>, addr: String) {
    let mut reader = BufReader::with_capacity(256 * 1024, read);
    let reason = loop {
        let body = match read_frame(&mut reader).await {
            Ok(Some(body)) => body,
            Ok(None) => break "connection closed by the broker".to_string(),
            Err(e) => break format!("{e:#}"),
        };
        let waiter = pending.lock().expect("pending lock").waiters.pop_front();
        let Some(waiter) = waiter else {
            break "the broker sent a response to no outstanding request".to_string();
        };
        match split_response(body, &waiter) {
            Ok(body) => {
                let _ = waiter.reply.send(Ok(body));
            }
            Err(e) => {
                let reason = format!("{e:#}");
                let _ = waiter.reply.send(Err(reason.clone()));
                break reason;
            }
        }
    };
    tracing::debug!(%addr, %reason, "connection closed");
    pending.lock().expect("pending lock").close(reason);
}

/// Reads one size-prefixed frame; `None` on a clean end of stream between frames.
async fn read_frame(reader: &mut BufReader<OwnedReadHalf>) -> Result<Option<Bytes>> {
    let size = match reader.read_i32().await {
        Ok(size) => size,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(anyhow!("read failed: {e}")),
    };
    if size < 0 || size as usize > MAX_RESPONSE_BYTES {
        bail!("invalid response size {size}: is this a Kafka broker?");
    }
    let size = size as usize;
    // Read into uninitialised capacity; `take` stops the read at the frame's end.
    let mut body = BytesMut::with_capacity(size);
    let mut limited = reader.take(size as u64);
    while body.len() < size {
        let n = limited
            .read_buf(&mut body)
            .await
            .map_err(|e| anyhow!("read failed: {e}"))?;
        if n == 0 {
            bail!("connection closed in the middle of a response");
        }
    }
    Ok(Some(body.freeze()))
}

/// Strips and checks the response header; returns the body.
fn split_response(mut body: Bytes, waiter: &Waiter) -> Result<Bytes> {
    let header_version = waiter.api_key.response_header_version(waiter.api_version);
    let header = ResponseHeader::decode(&mut body, header_version)
        .with_context(|| format!("cannot decode {:?} response header", waiter.api_key))?;
    if header.correlation_id != waiter.correlation_id {
        bail!(
            "response correlation id {} does not match request {} ({:?})",
            header.correlation_id,
            waiter.correlation_id,
            waiter.api_key
        );
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use kafka_protocol::protocol::decode_request_header_from_buffer;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// How the fake broker misbehaves.
    #[derive(Clone, Copy, PartialEq)]
    enum Fake {
        /// Answers ApiVersions v3 with UNSUPPORTED_VERSION, like a pre-2.4 broker.
        OldApiVersions,
        /// Answers the first Metadata request with a wrong correlation id.
        WrongCorrelation,
    }

    /// A one-connection fake broker speaking just ApiVersions and Metadata.
    async fn fake_broker(behaviour: Fake) -> (String, JoinHandle<Vec<(i16, i16)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            loop {
                let Ok(size) = socket.read_i32().await else {
                    return seen;
                };
                let mut frame = vec![0u8; size as usize];
                socket.read_exact(&mut frame).await.unwrap();
                let mut frame = Bytes::from(frame);
                let header = decode_request_header_from_buffer(&mut frame).unwrap();
                let (key, version) = (header.request_api_key, header.request_api_version);
                seen.push((key, version));
                let mut correlation_id = header.correlation_id;
                let mut body = BytesMut::new();
                let response_version;
                if key == ApiKey::ApiVersions as i16 {
                    let mut response = ApiVersionsResponse::default().with_api_keys(vec![
                        ApiVersion::default()
                            .with_api_key(ApiKey::ApiVersions as i16)
                            .with_max_version(2),
                        ApiVersion::default()
                            .with_api_key(ApiKey::Metadata as i16)
                            .with_max_version(12),
                    ]);
                    if behaviour == Fake::OldApiVersions && version > 2 {
                        // Kafka answers an unknown ApiVersions version in v0.
                        response.error_code = UNSUPPORTED_VERSION;
                        response_version = 0;
                    } else {
                        response_version = version;
                    }
                    response.encode(&mut body, response_version).unwrap();
                } else {
                    if behaviour == Fake::WrongCorrelation {
                        correlation_id += 1000;
                    }
                    response_version = version;
                    MetadataResponse::default().encode(&mut body, version).unwrap();
                }
                let api_key = ApiKey::try_from(key).unwrap();
                let mut head = BytesMut::new();
                ResponseHeader::default()
                    .with_correlation_id(correlation_id)
                    .encode(&mut head, api_key.response_header_version(response_version))
                    .unwrap();
                socket.write_i32((head.len() + body.len()) as i32).await.unwrap();
                socket.write_all(&head).await.unwrap();
                socket.write_all(&body).await.unwrap();
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn old_brokers_get_apiversions_again_in_a_version_they_speak() {
        let (addr, broker) = fake_broker(Fake::OldApiVersions).await;
        let conn = Connection::connect(&addr, "test").await.unwrap();
        // Metadata: the broker speaks up to v12, kafka-protocol up to v13.
        assert_eq!(conn.version::<MetadataRequest>().unwrap(), 12);
        let err = conn.version::<kafka_protocol::messages::FetchRequest>().unwrap_err();
        assert!(err.to_string().contains("does not support Fetch"), "{err}");

        // Three requests in flight at once, answered in order.
        let request = MetadataRequest::default();
        let a = conn.submit(&request, 12).await.unwrap();
        let b = conn.submit(&request, 12).await.unwrap();
        let c = conn.submit(&request, 9).await.unwrap();
        c.wait().await.unwrap();
        a.wait().await.unwrap();
        b.wait().await.unwrap();
        drop(conn);
        let seen = broker.await.unwrap();
        let api_versions = ApiKey::ApiVersions as i16;
        let metadata = ApiKey::Metadata as i16;
        assert_eq!(
            seen,
            [
                (api_versions, 3),
                (api_versions, 2),
                (metadata, 12),
                (metadata, 12),
                (metadata, 9)
            ]
        );
    }

    #[tokio::test]
    async fn a_wrong_correlation_id_fails_the_connection() {
        let (addr, _broker) = fake_broker(Fake::WrongCorrelation).await;
        let conn = Connection::connect(&addr, "test").await.unwrap();
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(format!("{err:#}").contains("correlation id"), "{err:#}");
        assert!(conn.is_closed());
        assert!(ConnectionError::is_cause_of(&err));
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(format!("{err:#}").contains("failed"), "{err:#}");
    }

    #[tokio::test]
    async fn unreachable_brokers_are_named() {
        // Bind and drop a listener to find a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let err = Connection::connect(&addr, "test").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot reach broker at {addr}: Connection refused (os error 111)")
        );
        assert!(ConnectionError::is_cause_of(&err));
    }

    #[tokio::test]
    async fn non_kafka_peers_are_detected() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let err = Connection::connect(&addr, "test").await.unwrap_err();
        assert!(format!("{err:#}").contains("is this a Kafka broker?"), "{err:#}");
    }
}
