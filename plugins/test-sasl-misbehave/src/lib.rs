//! A deliberately bad SASL mechanism for the tests. The mechanism chooses how `step`
//! misbehaves: `TEST-LOOP` spins forever, `TEST-TRAP` panics, `TEST-OOM` allocates without
//! bound, `TEST-BIG-STATE` answers with a session state larger than the broker keeps.
//! `TEST-ECHO` behaves: it authenticates the user named in the client's message if the
//! broker has a SCRAM-SHA-256 credential for them.

use strom_plugin_sdk::sasl::{self, Guest, Outcome, Principal};

struct Misbehave;

impl Guest for Misbehave {
    fn mechanisms() -> Vec<String> {
        ["TEST-LOOP", "TEST-TRAP", "TEST-OOM", "TEST-BIG-STATE", "TEST-ECHO"]
            .map(String::from)
            .to_vec()
    }

    fn start(mechanism: String, _client_address: String) -> Vec<u8> {
        mechanism.into_bytes()
    }

    fn step(state: Vec<u8>, client_message: Vec<u8>) -> Result<(Vec<u8>, Outcome), String> {
        match state.as_slice() {
            b"TEST-LOOP" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            b"TEST-TRAP" => panic!("test-sasl-misbehave was told to trap"),
            b"TEST-OOM" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            b"TEST-BIG-STATE" => Ok((vec![0u8; 1 << 20], Outcome::Challenge(Vec::new()))),
            _ => {
                let user = String::from_utf8(client_message).map_err(|_| "user name is not UTF-8".to_string())?;
                match sasl::lookup(&user, "SCRAM-SHA-256") {
                    Some(_) => Ok((Vec::new(), Outcome::Authenticated(Principal::user(&user)))),
                    None => Err(format!("no SCRAM-SHA-256 credential for {user:?}")),
                }
            }
        }
    }
}

strom_plugin_sdk::export_sasl_mechanism!(Misbehave);
