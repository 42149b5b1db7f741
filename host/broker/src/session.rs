//! One connection's authentication state: which requests it may send, SaslHandshake and
//! SaslAuthenticate (framed, v1+ handshake; or raw tokens after a v0 handshake), and
//! session expiry for re-authentication (KIP-368).
//!
//! Before a SASL listener's connection has authenticated, only ApiVersions and the SASL
//! APIs are served; anything else closes the connection, as Kafka does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{encode, now_ms, Broker};
use crate::config::listeners::SecurityProtocol;
use crate::protocol::{self, FrameError, Request};
use crate::security::oauth::OAuthSettings;
use crate::security::sasl::{SaslExchange, Step, Verifier};
use crate::security::ANONYMOUS;

/// What the connection loop should do with a request.
pub enum Admission {
    /// A normal request: hand it to the broker.
    Serve,
    /// SaslHandshake or SaslAuthenticate: handle it here.
    Sasl,
    /// Close the connection, for this reason.
    Close(String),
}

/// The answer to a SASL request: bytes to send, and whether to close afterwards.
pub struct SaslReply {
    pub bytes: Bytes,
    pub close: Option<String>,
}

enum State {
    /// PLAINTEXT or SSL listener: no SASL.
    NotRequired,
    /// SASL listener, before (or, for re-authentication, between) handshakes.
    AwaitingHandshake,
    /// Handshake done; the exchange runs in SaslAuthenticate requests (`framed`) or in raw
    /// tokens (after a v0 handshake).
    Exchanging {
        exchange: SaslExchange,
        framed: bool,
    },
    Authenticated,
}

pub struct ConnectionAuth {
    listener: Arc<str>,
    /// The client's address, as SASL plugins are told.
    peer: std::net::SocketAddr,
    state: State,
    principal: Arc<str>,
    /// When the SASL session expires (KIP-368); requests after it close the connection.
    expires_at: Option<Instant>,
    authentications: u32,
}

impl ConnectionAuth {
    /// `tls_principal` is the client certificate's principal, if one was presented.
    pub fn new(
        protocol: SecurityProtocol,
        listener: Arc<str>,
        peer: std::net::SocketAddr,
        tls_principal: Option<String>,
    ) -> ConnectionAuth {
        ConnectionAuth {
            listener,
            peer,
            state: if protocol.uses_sasl() {
                State::AwaitingHandshake
            } else {
                State::NotRequired
            },
            principal: Arc::from(tls_principal.as_deref().unwrap_or(ANONYMOUS)),
            expires_at: None,
            authentications: 0,
        }
    }

    pub fn principal(&self) -> &Arc<str> {
        &self.principal
    }

    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::Exchanging { framed: false, .. })
    }

    pub fn admit(&self, api_key: ApiKey) -> Admission {
        let sasl_api = matches!(api_key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        match &self.state {
            State::NotRequired | State::Authenticated if sasl_api => Admission::Sasl,
            State::NotRequired => Admission::Serve,
            State::Authenticated => match self.expires_at {
                Some(at) if Instant::now() >= at => Admission::Close(format!(
                    "the SASL session of {} expired (connections.max.reauth.ms) and the client did not re-authenticate",
                    self.principal
                )),
                _ => Admission::Serve,
            },
            State::AwaitingHandshake if api_key == ApiKey::ApiVersions && self.authentications == 0 => Admission::Serve,
            State::AwaitingHandshake if api_key == ApiKey::SaslHandshake => Admission::Sasl,
            State::Exchanging { framed: true, .. } if api_key == ApiKey::SaslAuthenticate => Admission::Sasl,
            _ => Admission::Close(format!(
                "unexpected {api_key:?} request before SASL authentication completed on listener {}",
                self.listener
            )),
        }
    }

    /// Handles SaslHandshake or SaslAuthenticate (after `admit` said `Sasl`).
    pub async fn handle(&mut self, broker: &Broker, request: &Request) -> Result<SaslReply, FrameError> {
        match request.api_key {
            ApiKey::SaslHandshake => {
                let body: SaslHandshakeRequest = protocol::decode_body(request)?;
                self.handshake(broker, request, body).await
            }
            _ => {
                let body: SaslAuthenticateRequest = protocol::decode_body(request)?;
                self.authenticate(broker, request, body).await
            }
        }
    }

    async fn handshake(
        &mut self,
        broker: &Broker,
        request: &Request,
        body: SaslHandshakeRequest,
    ) -> Result<SaslReply, FrameError> {
        let mut response = SaslHandshakeResponse::default();
        let enabled = broker.sasl_mechanisms(&self.listener);
        response.mechanisms = enabled.iter().map(|m| StrBytes::from_string(m.clone())).collect();
        if matches!(self.state, State::NotRequired) {
            response.error_code = ResponseError::IllegalSaslState.code();
            return Ok(SaslReply {
                bytes: encode(request, &response)?,
                close: None,
            });
        }
        let mechanism = body.mechanism.to_string();
        let close = if !enabled.contains(&mechanism) {
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
            Some(format!(
                "client asked for SASL mechanism {mechanism:?}; listener {} offers {}",
                self.listener,
                enabled.join(", ")
            ))
        } else {
            match broker.start_sasl(&mechanism, self.verifier(broker)).await {
                Ok(exchange) => {
                    self.state = State::Exchanging {
                        exchange,
                        framed: request.version >= 1,
                    };
                    None
                }
                Err(reason) => {
                    tracing::warn!(listener = %self.listener, peer = %self.peer, %mechanism, reason = %reason, "SASL handshake failed");
                    response.error_code = ResponseError::UnsupportedSaslMechanism.code();
                    Some(reason)
                }
            }
        };
        Ok(SaslReply {
            bytes: encode(request, &response)?,
            close,
        })
    }

    fn verifier(&self, broker: &Broker) -> Verifier {
        let config = &broker.config;
        Verifier {
            image: broker.metadata.image(),
            oauth: config
                .bool("sasl.oauthbearer.unsecured.validation.enable")
                .then(|| OAuthSettings {
                    sub_claim: config.get("sasl.oauthbearer.sub.claim.name").to_string(),
                    expected_audience: config
                        .get("sasl.oauthbearer.expected.audience")
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(String::from)
                        .collect(),
                    clock_skew_ms: config.i64("sasl.oauthbearer.clock.skew.seconds") * 1000,
                }),
            now_ms: now_ms(),
            client_address: self.peer.to_string(),
        }
    }

    async fn authenticate(
        &mut self,
        broker: &Broker,
        request: &Request,
        body: SaslAuthenticateRequest,
    ) -> Result<SaslReply, FrameError> {
        let mut response = SaslAuthenticateResponse::default();
        let outcome = match &mut self.state {
            State::Exchanging { exchange, .. } => Some(exchange.step(&body.auth_bytes).await),
            _ => None,
        };
        let close = match outcome {
            None => {
                response.error_code = ResponseError::IllegalSaslState.code();
                response.error_message = Some(StrBytes::from_static_str(
                    "SaslAuthenticate without a preceding SaslHandshake",
                ));
                None
            }
            Some(Ok(Step::Challenge(challenge))) => {
                response.auth_bytes = Bytes::from(challenge);
                None
            }
            Some(Ok(Step::Done { who, final_message })) => match self.complete(broker, who) {
                Ok(lifetime_ms) => {
                    response.auth_bytes = Bytes::from(final_message);
                    response.session_lifetime_ms = lifetime_ms;
                    None
                }
                Err(reason) => {
                    response.error_code = ResponseError::SaslAuthenticationFailed.code();
                    response.error_message = Some(StrBytes::from_string(reason.clone()));
                    Some(reason)
                }
            },
            Some(Err(reason)) => {
                broker.metrics.authentication(false);
                tracing::info!(listener = %self.listener, reason = %reason, "SASL authentication failed");
                response.error_code = ResponseError::SaslAuthenticationFailed.code();
                response.error_message = Some(StrBytes::from_string(reason.clone()));
                Some(reason)
            }
        };
        Ok(SaslReply {
            bytes: encode(request, &response)?,
            close,
        })
    }

    /// Handles one raw token after a v0 handshake; the reply is a size-prefixed token.
    pub async fn raw_token(&mut self, broker: &Broker, token: &[u8]) -> SaslReply {
        let State::Exchanging { exchange, .. } = &mut self.state else {
            unreachable!("raw tokens are read only while exchanging")
        };
        let (reply, close) = match exchange.step(token).await {
            Ok(Step::Challenge(challenge)) => (challenge, None),
            Ok(Step::Done { who, final_message }) => match self.complete(broker, who) {
                Ok(_) => (final_message, None),
                Err(reason) => (Vec::new(), Some(reason)),
            },
            Err(reason) => (Vec::new(), Some(reason)),
        };
        if let Some(reason) = &close {
            broker.metrics.authentication(false);
            tracing::info!(listener = %self.listener, reason = %reason, "SASL authentication failed");
            // Without framing there is no way to say why: Kafka closes the connection.
            return SaslReply {
                bytes: Bytes::new(),
                close: Some(reason.clone()),
            };
        }
        let mut out = BytesMut::with_capacity(4 + reply.len());
        out.put_i32(reply.len() as i32);
        out.put_slice(&reply);
        SaslReply {
            bytes: out.freeze(),
            close,
        }
    }

    /// Records a successful authentication; returns the session lifetime to report (0: none).
    fn complete(&mut self, broker: &Broker, who: crate::security::sasl::Authenticated) -> Result<i64, String> {
        if self.authentications > 0 && *self.principal != *who.principal {
            broker.metrics.authentication(false);
            return Err(format!(
                "re-authentication as {} on a connection authenticated as {} is not allowed",
                who.principal, self.principal
            ));
        }
        let now = now_ms();
        let reauth_ms = broker.config.i64("connections.max.reauth.ms");
        let mut lifetime_ms = if reauth_ms > 0 { Some(reauth_ms) } else { None };
        if let Some(expiry) = who.expires_at_ms {
            let left = (expiry - now).max(0);
            lifetime_ms = Some(lifetime_ms.map_or(left, |l| l.min(left)));
        }
        self.expires_at = lifetime_ms.map(|ms| Instant::now() + Duration::from_millis(ms as u64));
        self.authentications += 1;
        broker.metrics.authentication(true);
        tracing::info!(
            listener = %self.listener,
            principal = %who.principal,
            reauthentication = self.authentications > 1,
            session_lifetime_ms = lifetime_ms.unwrap_or(0),
            "SASL authentication succeeded"
        );
        self.principal = Arc::from(who.principal.as_str());
        self.state = State::Authenticated;
        Ok(lifetime_ms.unwrap_or(0))
    }
}
