//! SASL plugins (the `sasl-plugin` world) against the real components built from plugins/:
//! the STROM-HMAC-SHA256 mechanism of `hmac-challenge` end to end over a SCRAM-SHA-256
//! credential, and a looping, trapping, memory-hungry or oversized-state mechanism failing
//! only its own call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use strom_plugins::{
    artifacts, CallError, CredentialLookup, Limits, LoadedPlugin, PluginRuntime, SaslOutcome, ScramCredential, World,
};

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The runtime must outlive its plugins' calls: dropping it stops the epoch ticker that
/// enforces time budgets.
fn runtime() -> PluginRuntime {
    PluginRuntime::new(None).unwrap()
}

fn load(rt: &PluginRuntime, id: &str, path: &str, limits: Limits) -> LoadedPlugin {
    rt.load(id, &bytes(path), BTreeMap::new(), limits)
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// A SCRAM-SHA-256 credential as Kafka stores it (RFC 5802).
fn scram_credential(password: &str, salt: &[u8], iterations: u32) -> ScramCredential {
    let salted = salted_password(password, salt, iterations);
    let client_key = hmac_sha256(&salted, b"Client Key");
    ScramCredential {
        salt: salt.to_vec(),
        stored_key: Sha256::digest(&client_key).to_vec(),
        server_key: hmac_sha256(&salted, b"Server Key"),
        iterations,
    }
}

/// Answers lookups for `alice` (SCRAM-SHA-256 only), counting them.
fn alice(password: &str, lookups: Arc<AtomicUsize>) -> CredentialLookup {
    let credential = scram_credential(password, b"0123456789abcdef", 4096);
    Arc::new(move |user: &str, mechanism: &str| {
        lookups.fetch_add(1, Ordering::Relaxed);
        (user == "alice" && mechanism == "SCRAM-SHA-256").then(|| credential.clone())
    })
}

/// The client side of STROM-HMAC-SHA256 for one challenge.
fn proof(password: &str, challenge: &[u8]) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_slice(challenge).expect("the challenge is JSON");
    let b64 = |field: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(json[field].as_str().unwrap_or_else(|| panic!("no {field} in {json}")))
            .unwrap()
    };
    let (salt, nonce) = (b64("salt"), b64("nonce"));
    assert_eq!(nonce.len(), 24, "{json}");
    let iterations = json["iterations"].as_u64().expect("iterations") as u32;
    let salted = salted_password(password, &salt, iterations);
    let stored_key = Sha256::digest(hmac_sha256(&salted, b"Client Key"));
    hmac_sha256(&stored_key, &nonce)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

/// Runs the whole exchange as `user` with `password` against a broker that knows alice's
/// credential for `stored`.
async fn authenticate(
    plugin: &LoadedPlugin,
    user: &str,
    password: &str,
    stored: &str,
) -> Result<SaslOutcome, CallError> {
    let lookups = Arc::new(AtomicUsize::new(0));
    let state = plugin.sasl_start("STROM-HMAC-SHA256", "127.0.0.1:5555").await?;
    let (state, outcome) = plugin
        .sasl_step(&state, user.as_bytes(), alice(stored, Arc::clone(&lookups)))
        .await?;
    let SaslOutcome::Challenge(challenge) = outcome else {
        panic!("expected a challenge, got {outcome:?}")
    };
    let (_, outcome) = plugin
        .sasl_step(
            &state,
            &proof(password, &challenge),
            alice(stored, Arc::clone(&lookups)),
        )
        .await?;
    assert!(
        lookups.load(Ordering::Relaxed) >= 2,
        "the plugin never asked for the credential"
    );
    Ok(outcome)
}

#[tokio::test]
async fn hmac_challenge_is_a_sasl_plugin_with_its_mechanism() {
    let rt = runtime();
    let world = rt.inspect(&bytes(artifacts::HMAC_CHALLENGE)).unwrap();
    assert_eq!(world, World::Sasl);
    assert_eq!(world.name(), "sasl-plugin");
    assert_eq!(World::parse("sasl-plugin"), Some(World::Sasl));
    let p = load(&rt, "hmac-challenge@1", artifacts::HMAC_CHALLENGE, Limits::default());
    assert_eq!(
        p.sasl_mechanisms().await.unwrap(),
        vec!["STROM-HMAC-SHA256".to_string()]
    );
    // A partitioner is not a SASL plugin: the call is refused without touching the guest.
    let m2 = load(&rt, "m2@1", artifacts::MURMUR2_PARTITIONER, Limits::default());
    assert!(matches!(m2.sasl_mechanisms().await, Err(CallError::BadAnswer { .. })));
}

#[tokio::test]
async fn hmac_challenge_authenticates_the_right_password_only() {
    let rt = runtime();
    let p = load(&rt, "hmac-challenge@1", artifacts::HMAC_CHALLENGE, Limits::default());
    match authenticate(&p, "alice", "alice-secret", "alice-secret").await.unwrap() {
        SaslOutcome::Authenticated(principal) => {
            assert_eq!(principal.principal_type, "User");
            assert_eq!(principal.name, "alice");
            assert_eq!(principal.session_lifetime_ms, None);
        }
        other => panic!("expected success, got {other:?}"),
    }
    // Wrong password and unknown user fail alike, as refusals with SASL_AUTHENTICATION_FAILED.
    let wrong = authenticate(&p, "alice", "wrong", "alice-secret").await.unwrap_err();
    let unknown = authenticate(&p, "mallory", "alice-secret", "alice-secret")
        .await
        .unwrap_err();
    for err in [&wrong, &unknown] {
        match err {
            CallError::Refused { error_code, message } => {
                assert_eq!(*error_code, 58);
                assert!(
                    message.contains("hmac-challenge@1") && message.contains("unknown user or invalid proof"),
                    "{message}"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(wrong.to_string(), unknown.to_string());
}

#[tokio::test]
async fn hmac_challenge_nonces_are_fresh_and_bound_to_the_session() {
    let rt = runtime();
    let p = load(&rt, "hmac-challenge@1", artifacts::HMAC_CHALLENGE, Limits::default());
    let lookup = alice("pw", Arc::new(AtomicUsize::new(0)));
    let start = p.sasl_start("STROM-HMAC-SHA256", "127.0.0.1:1").await.unwrap();
    let challenge =
        async |lookup: &CredentialLookup| match p.sasl_step(&start, b"alice", Arc::clone(lookup)).await.unwrap() {
            (state, SaslOutcome::Challenge(c)) => (state, c),
            other => panic!("{other:?}"),
        };
    let (state1, challenge1) = challenge(&lookup).await;
    let (state2, challenge2) = challenge(&lookup).await;
    assert_ne!(challenge1, challenge2, "two sessions got the same nonce");
    // A proof for one session's nonce does not authenticate another session.
    let err = p
        .sasl_step(&state2, &proof("pw", &challenge1), Arc::clone(&lookup))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Refused { error_code: 58, .. }), "{err:?}");
    assert!(matches!(
        p.sasl_step(&state1, &proof("pw", &challenge1), Arc::clone(&lookup))
            .await
            .unwrap()
            .1,
        SaslOutcome::Authenticated(_)
    ));
    // Garbage instead of a proof, and a mechanism the plugin does not provide.
    assert!(matches!(
        p.sasl_step(&state1, b"not hex", Arc::clone(&lookup)).await,
        Err(CallError::Refused { .. })
    ));
    let other = p.sasl_start("PLAIN", "127.0.0.1:1").await.unwrap();
    let err = p.sasl_step(&other, b"alice", lookup).await.unwrap_err();
    assert!(err.to_string().contains("only STROM-HMAC-SHA256"), "{err}");
}

#[tokio::test]
async fn a_misbehaving_sasl_plugin_fails_only_its_own_call() {
    let rt = runtime();
    let limits = Limits {
        call_ms_max: 50,
        memory_bytes_max: 8 << 20,
    };
    let p = load(&rt, "bad-sasl@1", artifacts::TEST_SASL_MISBEHAVE, limits);
    let lookup = alice("pw", Arc::new(AtomicUsize::new(0)));
    let step = async |mechanism: &str| {
        let state = p.sasl_start(mechanism, "127.0.0.1:1").await.unwrap();
        p.sasl_step(&state, b"alice", Arc::clone(&lookup)).await
    };

    let started = Instant::now();
    let err = step("TEST-LOOP").await.unwrap_err();
    assert_eq!(
        err,
        CallError::Timeout {
            plugin: "bad-sasl@1".into(),
            budget_ms: 50
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped after {:?}",
        started.elapsed()
    );

    let err = step("TEST-TRAP").await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err:?}");
    assert!(err.to_string().contains("bad-sasl@1 trapped"), "{err}");

    let err = step("TEST-OOM").await.unwrap_err();
    assert!(matches!(err, CallError::OutOfMemory { .. }), "{err:?}");

    let err = step("TEST-BIG-STATE").await.unwrap_err();
    assert!(matches!(err, CallError::BadAnswer { .. }), "{err:?}");
    assert!(err.to_string().contains("session state"), "{err}");

    // The plugin still works, and the credential lookup reaches the guest.
    match step("TEST-ECHO").await.unwrap() {
        (_, SaslOutcome::Authenticated(p)) => assert_eq!(p.name, "alice"),
        other => panic!("{other:?}"),
    }
    let state = p.sasl_start("TEST-ECHO", "127.0.0.1:1").await.unwrap();
    let err = p.sasl_step(&state, b"bob", lookup).await.unwrap_err();
    assert!(
        err.to_string().contains("no SCRAM-SHA-256 credential for \"bob\""),
        "{err}"
    );
    let (calls, failures) = p.stats();
    assert!(calls >= 12 && failures >= 5, "calls {calls}, failures {failures}");
}
