//! Networking: listeners, and one task per connection that reads size-prefixed frames,
//! has the broker handle them in order, and writes the responses back in the same order.
//! Frames are slices of what the socket delivered (see frames.rs), never copied.
//!
//! *Architecture invariant:* a bad frame costs only its own connection. Oversized size
//! prefixes, garbage, unknown APIs and unsupported versions close that connection (or, for
//! ApiVersions, get Kafka's UNSUPPORTED_VERSION answer); nothing here can stop the broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::broker::{Broker, RequestContext};
use crate::config::listeners::SecurityProtocol;
use crate::frames::{FrameReader, ReadError};
use crate::handlers::api_versions;
use crate::protocol::{self, FrameError};
use crate::security::tls::principal_from_certificate;
use crate::session::{Admission, ConnectionAuth};

const SOCKET_BUFFER_BYTES: usize = 64 * 1024;

/// Binds every configured listener. Fails with the address when one cannot be bound.
pub async fn bind(broker: &Broker) -> anyhow::Result<Vec<(Arc<str>, TcpListener)>> {
    let mut bound = Vec::new();
    for listener in &broker.config.listeners {
        let address = listener.bind_address();
        let socket = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot bind listener {} to {address}", listener.name))?;
        tracing::info!(listener = %listener.name, address = %socket.local_addr()?, "listening");
        bound.push((Arc::from(listener.name.as_str()), socket));
    }
    Ok(bound)
}

/// Accepts connections until shutdown begins; then waits (up to `grace`) for open
/// connections to finish the request they are on.
pub async fn serve(broker: Arc<Broker>, listeners: Vec<(Arc<str>, TcpListener)>, grace: Duration) {
    let mut connections = JoinSet::new();
    let mut acceptors = JoinSet::new();
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel::<(TcpStream, SocketAddr, Arc<str>)>(1024);
    for (name, socket) in listeners {
        let tx = conn_tx.clone();
        acceptors.spawn(async move {
            loop {
                match socket.accept().await {
                    Ok((stream, peer)) => {
                        if tx.send((stream, peer, Arc::clone(&name))).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    drop(conn_tx);
    loop {
        tokio::select! {
            Some((stream, peer, listener)) = conn_rx.recv() => {
                let broker = Arc::clone(&broker);
                connections.spawn(async move {
                    broker.metrics.connection_opened();
                    let result = accept_connection(&broker, stream, peer, listener).await;
                    broker.metrics.connection_closed(result.is_err());
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection closed");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = broker.shutdown_started() => break,
        }
    }
    acceptors.abort_all();
    let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "connections still busy at the shutdown deadline; closing them"
        );
        connections.abort_all();
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame size {size} is outside 0..={max} (socket.request.max.bytes)")]
    FrameSize { size: i32, max: i64 },
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("authentication: {0}")]
    Auth(String),
}

/// Kafka's `connection.failed.authentication.delay.ms`: after a failed authentication the
/// answer goes out at once but the connection closes only after this pause, so the client
/// reads the reason before the close, and one retrying wrong credentials cannot spin the
/// broker.
const FAILED_AUTHENTICATION_DELAY: Duration = Duration::from_millis(100);

/// Sends what is buffered (the failure response), waits, and reports why the connection ends.
async fn close_after_failed_authentication<W: AsyncWrite + Unpin>(writer: &mut W, reason: String) -> ConnectionError {
    if let Err(e) = writer.flush().await {
        return e.into();
    }
    tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
    ConnectionError::Auth(reason)
}

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sets up one accepted connection: TLS first on SSL and SASL_SSL listeners (a client that
/// does not speak TLS fails here and only its connection closes), then the request loop.
async fn accept_connection(
    broker: &Broker,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
) -> Result<(), ConnectionError> {
    stream.set_nodelay(true)?;
    let protocol = broker
        .config
        .listeners
        .iter()
        .find(|l| *l.name == *listener)
        .map(|l| l.protocol)
        .unwrap_or(SecurityProtocol::Plaintext);
    if let Some(tls) = broker.tls.get(&*listener) {
        let accepted = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream))
            .await
            .map_err(|_| ConnectionError::Tls("handshake timed out".into()))?
            .map_err(|e| ConnectionError::Tls(e.to_string()))?;
        let tls_principal = accepted
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| principal_from_certificate(cert));
        let auth = ConnectionAuth::new(protocol, Arc::clone(&listener), peer, tls_principal);
        let (read_half, write_half) = tokio::io::split(accepted);
        serve_connection(broker, read_half, write_half, peer, listener, auth).await
    } else {
        let auth = ConnectionAuth::new(protocol, Arc::clone(&listener), peer, None);
        let (read_half, write_half) = stream.into_split();
        serve_connection(broker, read_half, write_half, peer, listener, auth).await
    }
}

async fn serve_connection<R, W>(
    broker: &Broker,
    read_half: R,
    write_half: W,
    peer: SocketAddr,
    listener: Arc<str>,
    mut auth: ConnectionAuth,
) -> Result<(), ConnectionError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let max_frame = broker.config.i64("socket.request.max.bytes");
    let idle = Duration::from_millis(broker.config.i64("connections.max.idle.ms").max(1) as u64);
    let mut reader = FrameReader::new(read_half, max_frame);
    let mut writer = BufWriter::with_capacity(SOCKET_BUFFER_BYTES, write_half);
    let mut ctx = RequestContext {
        listener,
        peer,
        client_id: String::new(),
        version: 0,
        principal: Arc::clone(auth.principal()),
    };
    loop {
        if !reader.has_complete_frame() {
            // No other request is here to be served at once: send what the earlier ones
            // answered (a pipelining client waits for them before it sends more).
            writer.flush().await?;
        }
        let frame = tokio::select! {
            frame = reader.next_frame() => match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(ReadError::Io(e)) => return Err(e.into()),
                Err(ReadError::FrameSize { size, max }) => {
                    tracing::warn!(%peer, size, max, "closing connection: request frame too large");
                    return Err(ConnectionError::FrameSize { size, max });
                }
            },
            _ = tokio::time::sleep(idle) => return Err(ConnectionError::Idle(idle)),
            _ = broker.shutdown_started() => return Ok(()),
        };
        if auth.expects_raw_token() {
            // After a v0 SaslHandshake the client sends bare SASL tokens, not requests.
            let reply = auth.raw_token(broker, &frame).await;
            writer.write_all(&reply.bytes).await?;
            if let Some(reason) = reply.close {
                return Err(close_after_failed_authentication(&mut writer, reason).await);
            }
            ctx.principal = Arc::clone(auth.principal());
            continue;
        }
        let request = match protocol::parse_request(frame) {
            Ok(request) => request,
            Err(FrameError::UnsupportedApiVersions {
                version,
                correlation_id,
            }) => {
                // Kafka answers in the v0 format so any client can read the versions it may use.
                let body = api_versions::response(ResponseError::UnsupportedVersion.code());
                let bytes = protocol::encode_response(correlation_id, 0, &body).expect("ApiVersions v0 encodes");
                tracing::debug!(%peer, version, "ApiVersions with an unsupported version");
                writer.write_all(&bytes).await?;
                continue;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: unusable request");
                return Err(e.into());
            }
        };
        ctx.client_id.clone_from(&request.client_id);
        ctx.version = request.version;
        match auth.admit(request.api_key) {
            Admission::Serve => {}
            Admission::Sasl => {
                let reply = auth.handle(broker, &request).await?;
                writer.write_all(&reply.bytes).await?;
                if let Some(reason) = reply.close {
                    return Err(close_after_failed_authentication(&mut writer, reason).await);
                }
                ctx.principal = Arc::clone(auth.principal());
                continue;
            }
            Admission::Close(reason) => {
                tracing::info!(%peer, client = %ctx.client_id, reason = %reason, "closing connection");
                writer.flush().await?;
                return Err(ConnectionError::Auth(reason));
            }
        }
        if request.api_key == ApiKey::Fetch {
            // A long-poll may wait: let earlier pipelined responses go out first.
            writer.flush().await?;
        }
        match broker.handle(&ctx, &request).await {
            Ok(Some(bytes)) => writer.write_all(&bytes).await?,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, client = %ctx.client_id, api = ?request.api_key, version = request.version, error = %e, "closing connection");
                writer.flush().await?;
                return Err(e.into());
            }
        }
    }
}
