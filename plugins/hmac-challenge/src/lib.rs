//! `STROM-HMAC-SHA256`: a challenge/response SASL mechanism over the user's stored
//! SCRAM-SHA-256 credential, so it needs no secret store of its own.
//!
//! 1. client-first: the user name (UTF-8).
//! 2. server challenge: JSON `{"salt": base64, "iterations": n, "nonce": base64}` with the
//!    salt and iteration count of the user's SCRAM-SHA-256 credential and 24 fresh random
//!    bytes (WASI random).
//! 3. client-final: hex(HMAC-SHA256(key = StoredKey, message = nonce)), where the client
//!    derives SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations),
//!    ClientKey = HMAC-SHA256(SaltedPassword, "Client Key"), StoredKey = SHA-256(ClientKey).
//! 4. The plugin recomputes the HMAC from the stored credential and compares in constant
//!    time; success authenticates `User:<name>`.
//!
//! Config (the broker's `plugin.hmac-challenge.<key>` settings): `session.lifetime.ms`, the
//! session lifetime the broker enforces (KIP-368 re-authentication); none by default.
//!
//! An unknown user gets a challenge like anyone else (with a random salt) and fails at the
//! last step with the same reason as a wrong password. The session state (stage, nonce,
//! user name) lives in the opaque bytes the broker keeps per connection.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use strom_plugin_sdk::sasl::{self, Guest, Outcome, Principal};

const MECHANISM: &str = "STROM-HMAC-SHA256";
const CREDENTIAL: &str = "SCRAM-SHA-256";
const NONCE_BYTES: usize = 24;
const USER_BYTES_MAX: usize = 255;
/// Salt and iterations shown to a user who has no credential (the salt is random).
const DECOY_ITERATIONS: u32 = 4096;
const DECOY_SALT_BYTES: usize = 16;
const FAILED: &str = "authentication failed: unknown user or invalid proof";

/// First byte of the session state.
const STAGE_START: u8 = 0;
const STAGE_CHALLENGED: u8 = 1;
const STAGE_DONE: u8 = 2;
const STAGE_WRONG_MECHANISM: u8 = 0xff;

struct HmacChallenge;

impl Guest for HmacChallenge {
    fn mechanisms() -> Vec<String> {
        vec![MECHANISM.to_string()]
    }

    fn start(mechanism: String, _client_address: String) -> Vec<u8> {
        if mechanism == MECHANISM {
            vec![STAGE_START]
        } else {
            vec![STAGE_WRONG_MECHANISM]
        }
    }

    fn step(state: Vec<u8>, client_message: Vec<u8>) -> Result<(Vec<u8>, Outcome), String> {
        match state.split_first() {
            Some((&STAGE_START, _)) => challenge(&client_message),
            Some((&STAGE_CHALLENGED, rest)) if rest.len() > NONCE_BYTES => {
                let (nonce, user) = rest.split_at(NONCE_BYTES);
                let user = std::str::from_utf8(user).map_err(|_| "corrupt session state".to_string())?;
                verify(user, nonce, &client_message)
            }
            Some((&STAGE_DONE, _)) => Err(format!("the {MECHANISM} exchange is already complete")),
            Some((&STAGE_WRONG_MECHANISM, _)) => Err(format!("this plugin provides only {MECHANISM}")),
            _ => Err("corrupt session state".to_string()),
        }
    }
}

/// client-first (the user name) -> the challenge.
fn challenge(client_first: &[u8]) -> Result<(Vec<u8>, Outcome), String> {
    let user = std::str::from_utf8(client_first).map_err(|_| "the user name is not UTF-8".to_string())?;
    if user.is_empty() || user.len() > USER_BYTES_MAX || user.chars().any(char::is_control) {
        return Err(format!(
            "the user name must be 1 to {USER_BYTES_MAX} bytes of UTF-8 without control characters"
        ));
    }
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| format!("no random bytes for the nonce: {e}"))?;
    let (salt, iterations) = match sasl::lookup(user, CREDENTIAL) {
        Some(credential) => (credential.salt, credential.iterations),
        None => {
            let mut salt = vec![0u8; DECOY_SALT_BYTES];
            getrandom::fill(&mut salt).map_err(|e| format!("no random bytes: {e}"))?;
            (salt, DECOY_ITERATIONS)
        }
    };
    let challenge = format!(
        r#"{{"salt":"{}","iterations":{iterations},"nonce":"{}"}}"#,
        BASE64.encode(&salt),
        BASE64.encode(nonce)
    );
    let mut state = Vec::with_capacity(1 + NONCE_BYTES + user.len());
    state.push(STAGE_CHALLENGED);
    state.extend_from_slice(&nonce);
    state.extend_from_slice(user.as_bytes());
    Ok((state, Outcome::Challenge(challenge.into_bytes())))
}

/// client-final (hex proof) -> the principal, or the one failure reason.
fn verify(user: &str, nonce: &[u8], client_final: &[u8]) -> Result<(Vec<u8>, Outcome), String> {
    let proof = decode_hex(client_final)
        .ok_or_else(|| format!("{FAILED} (the proof must be 64 hex digits: HMAC-SHA256(StoredKey, nonce))"))?;
    let credential = sasl::lookup(user, CREDENTIAL);
    // Without a credential the HMAC still runs (with a key nobody has), so both failures
    // take the same path.
    let (key, known) = match &credential {
        Some(c) if !c.stored_key.is_empty() => (c.stored_key.as_slice(), true),
        _ => (&[0u8; 32][..], false),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| FAILED.to_string())?;
    mac.update(nonce);
    // `verify_slice` compares in constant time.
    let matches = mac.verify_slice(&proof).is_ok();
    if !(matches && known) {
        return Err(FAILED.to_string());
    }
    let mut principal = Principal::user(user);
    // `plugin.hmac-challenge.session.lifetime.ms` in the broker's settings: how long the
    // session lasts before the client must re-authenticate (KIP-368).
    principal.session_lifetime_ms = strom_plugin_sdk::host::config("session.lifetime.ms").and_then(|v| v.parse().ok());
    Ok((vec![STAGE_DONE], Outcome::Authenticated(principal)))
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    let text = text.trim_ascii();
    if text.len() != 64 {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

strom_plugin_sdk::export_sasl_mechanism!(HmacChallenge);
