//! One connection's SASL exchange. Built-in mechanisms come from rsasl: PLAIN (checked
//! against the user's SCRAM credential), SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER
//! (unsecured tokens). Mechanisms named in `sasl.mechanism.plugins` run in WASM plugins
//! (the `sasl-plugin` world): the plugin's session state is kept here between steps, and its
//! `credentials.lookup` import is answered from the metadata image.

use std::io::Cursor;
use std::sync::Arc;

use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::oauthbearer::properties::{OAuthBearerError, OAuthBearerValidate};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::prelude::{Mechname, SASLConfig, SASLServer, Session, SessionError, State, Validation};
use rsasl::property::{AuthId, AuthzId, OAuthBearerToken, Password};
use rsasl::validate::{Validate, ValidationError};
use strom_metadata::MetadataImage;
use strom_plugins::{CallError, CredentialLookup, LoadedPlugin, SaslOutcome, ScramCredential};

use super::oauth::{self, OAuthSettings};
use super::scram::ScramMechanism;

/// Mechanisms rsasl provides for us.
pub const BUILTIN: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// Who authenticated, as a mechanism reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// `User:alice`.
    pub principal: String,
    /// When the credential itself expires (OAUTHBEARER tokens), ms since the epoch.
    pub expires_at_ms: Option<i64>,
}

/// What one step of the exchange produced.
#[derive(Debug)]
pub enum Step {
    /// Send this challenge and wait for the client's next message.
    Challenge(Vec<u8>),
    /// Done: send `final_message` (possibly empty) and treat the connection as `who`.
    Done { who: Authenticated, final_message: Vec<u8> },
}

/// Everything a built-in mechanism needs to check credentials.
#[derive(Clone)]
pub struct Verifier {
    pub image: Arc<MetadataImage>,
    pub oauth: Option<OAuthSettings>,
    pub now_ms: i64,
    /// The client's `ip:port`, as plugin mechanisms are told.
    pub client_address: String,
}

pub struct SaslExchange {
    mechanism: String,
    inner: Inner,
}

enum Inner {
    Builtin(Session<Outcome>),
    Plugin(PluginSession),
}

/// A mechanism running in a WASM plugin: the plugin, the session state it returned last,
/// and the image its credential lookups read.
struct PluginSession {
    plugin: Arc<LoadedPlugin>,
    state: Vec<u8>,
    image: Arc<MetadataImage>,
    finished: bool,
}

impl SaslExchange {
    /// Starts a built-in mechanism; `None` if rsasl does not know the name.
    pub fn start(mechanism: &str, verifier: Verifier) -> Option<SaslExchange> {
        let config = SASLConfig::builder()
            .with_default_mechanisms()
            .with_callback(Callback { verifier })
            .ok()?;
        let name = Mechname::parse(mechanism.as_bytes()).ok()?;
        let session = SASLServer::<Outcome>::new(config).start_suggested(name).ok()?;
        Some(SaslExchange {
            mechanism: mechanism.to_string(),
            inner: Inner::Builtin(session),
        })
    }

    /// Starts `mechanism` in a SASL plugin. `Err` says why it cannot run (the plugin does
    /// not provide it, or failed to start).
    pub async fn start_plugin(
        mechanism: &str,
        plugin: Arc<LoadedPlugin>,
        verifier: Verifier,
    ) -> Result<SaslExchange, String> {
        let started = async {
            let provided = plugin.sasl_mechanisms().await?;
            if !provided.iter().any(|m| m == mechanism) {
                return Ok((provided, Vec::new()));
            }
            let state = plugin.sasl_start(mechanism, &verifier.client_address).await?;
            Ok((provided, state))
        };
        let (provided, state) = started.await.map_err(|e: CallError| {
            format!(
                "SASL mechanism {mechanism} could not be started by plugin {}: {e}",
                plugin.id
            )
        })?;
        if !provided.iter().any(|m| m == mechanism) {
            return Err(format!(
                "SASL mechanism {mechanism} is mapped to plugin {} in sasl.mechanism.plugins, but that plugin provides only [{}]",
                plugin.id,
                provided.join(", ")
            ));
        }
        Ok(SaslExchange {
            mechanism: mechanism.to_string(),
            inner: Inner::Plugin(PluginSession {
                plugin,
                state,
                image: verifier.image,
                finished: false,
            }),
        })
    }

    /// Feeds the client's message. `Err` is an authentication failure with the reason the
    /// client is told.
    pub async fn step(&mut self, client_message: &[u8]) -> Result<Step, String> {
        let session = match &mut self.inner {
            Inner::Builtin(session) => session,
            Inner::Plugin(plugin) => return plugin.step(&self.mechanism, client_message).await,
        };
        let mut out = Cursor::new(Vec::new());
        let state = session
            .step(Some(client_message), &mut out)
            .map_err(|e| describe_failure(&self.mechanism, &e))?;
        let message = out.into_inner();
        match state {
            State::Running => {
                if self.mechanism == "OAUTHBEARER" {
                    // rsasl answers a rejected token with an error JSON and waits for the
                    // client's dummy reply; Kafka fails at once with the reason.
                    return Err(session.validation().and_then(|v| v.err()).unwrap_or_else(|| {
                        format!(
                            "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER: {}",
                            String::from_utf8_lossy(&message)
                        )
                    }));
                }
                Ok(Step::Challenge(message))
            }
            State::Finished(_) => match session.validation() {
                Some(Ok(who)) => Ok(Step::Done {
                    who,
                    final_message: message,
                }),
                Some(Err(reason)) => Err(reason),
                None => Err(format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                    self.mechanism
                )),
            },
        }
    }
}

impl PluginSession {
    async fn step(&mut self, mechanism: &str, client_message: &[u8]) -> Result<Step, String> {
        let invalid = || {
            format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
        };
        if self.finished {
            return Err(format!("{}: the exchange is already complete", invalid()));
        }
        let image = Arc::clone(&self.image);
        let lookup: CredentialLookup = Arc::new(move |user: &str, scram_mechanism: &str| {
            image.scram_credential(user, scram_mechanism).map(|c| ScramCredential {
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            })
        });
        let plugin = &self.plugin;
        let answer = plugin.sasl_step(&self.state, client_message, lookup).await;
        let (state, outcome) = answer.map_err(|e| match e {
            // The mechanism's own verdict (bad credentials): its reason is the client's.
            CallError::Refused { message, .. } => format!("{}: {message}", invalid()),
            // The plugin broke (trap, time budget, memory cap, bad answer): fail this
            // authentication only, and say so.
            other => {
                tracing::warn!(mechanism, error = %other, "SASL plugin call failed");
                format!("Authentication failed with SASL mechanism {mechanism}: {other}")
            }
        })?;
        self.state = state;
        match outcome {
            SaslOutcome::Challenge(challenge) => Ok(Step::Challenge(challenge)),
            SaslOutcome::Authenticated(principal) => {
                self.finished = true;
                Ok(Step::Done {
                    who: Authenticated {
                        principal: format!("{}:{}", principal.principal_type, principal.name),
                        expires_at_ms: principal
                            .session_lifetime_ms
                            .map(|ms| crate::broker::now_ms().saturating_add(ms)),
                    },
                    final_message: Vec::new(),
                })
            }
        }
    }
}

fn describe_failure(mechanism: &str, error: &SessionError) -> String {
    tracing::debug!(mechanism, error = %error, "SASL step failed");
    format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
}

struct Outcome;

impl Validation for Outcome {
    type Value = Result<Authenticated, String>;
}

struct Callback {
    verifier: Verifier,
}

impl Callback {
    fn check_token(&self, token: &str) -> Result<oauth::ValidToken, String> {
        let settings = self
            .verifier
            .oauth
            .as_ref()
            .ok_or("OAUTHBEARER is not enabled on this broker")?;
        // The client sends the HTTP authorization value: "Bearer <token>".
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        oauth::validate(token, settings, self.verifier.now_ms)
    }

    fn outcome(&self, session_data: &SessionData, context: &Context) -> Result<Authenticated, String> {
        let mechanism = session_data.mechanism().mechanism.as_str();
        let invalid = || {
            format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
        };
        if mechanism == "OAUTHBEARER" {
            let token = context.get_ref::<OAuthBearerToken>().ok_or_else(invalid)?;
            let valid = self
                .check_token(token)
                .map_err(|reason| format!("{}: {reason}", invalid()))?;
            return Ok(Authenticated {
                principal: format!("User:{}", valid.subject),
                expires_at_ms: Some(valid.expires_at_ms),
            });
        }
        let user = context.get_ref::<AuthId>().ok_or_else(invalid)?;
        if let Some(authzid) = context.get_ref::<AuthzId>() {
            if !authzid.is_empty() && authzid != user {
                return Err(format!(
                    "{}: authorization id {authzid:?} differs from user {user:?}",
                    invalid()
                ));
            }
        }
        if mechanism == "PLAIN" {
            let password = context.get_ref::<Password>().ok_or_else(invalid)?;
            let image = &self.verifier.image;
            let matches = ScramMechanism::ALL.into_iter().any(|m| {
                image
                    .scram_credential(user, m.name())
                    .is_some_and(|c| m.password_matches(c, password))
            });
            if !matches {
                return Err(invalid());
            }
        }
        // SCRAM reaches validation only after the client's proof was verified.
        Ok(Authenticated {
            principal: format!("User:{user}"),
            expires_at_ms: None,
        })
    }
}

impl SessionCallback for Callback {
    fn callback(
        &self,
        session_data: &SessionData,
        context: &Context,
        request: &mut Request,
    ) -> Result<(), SessionError> {
        let mechanism = session_data.mechanism().mechanism.as_str();
        if request.is::<ScramStoredPassword>() {
            if let Some(credential) = context
                .get_ref::<AuthId>()
                .and_then(|user| self.verifier.image.scram_credential(user, mechanism))
            {
                request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
                    credential.iterations,
                    &credential.salt,
                    &credential.stored_key,
                    &credential.server_key,
                ))?;
            }
        } else if request.is::<OAuthBearerValidate>() {
            let valid = context
                .get_ref::<OAuthBearerToken>()
                .map(|t| self.check_token(t).is_ok())
                .unwrap_or(false);
            let result: Result<(), OAuthBearerError> = if valid {
                Ok(())
            } else {
                Err(OAuthBearerError::new("invalid_token", None, None))
            };
            request.satisfy::<OAuthBearerValidate>(&result)?;
        }
        Ok(())
    }

    fn validate(
        &self,
        session_data: &SessionData,
        context: &Context,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        validate.with::<Outcome, _>(|| Ok(self.outcome(session_data, context)))?;
        Ok(())
    }
}
