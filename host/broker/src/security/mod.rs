//! Who is on the other end of a connection, and what they may do.
//!
//! - [`tls`]: rustls server configs per listener, reloaded when their files change, and the
//!   principal of a client certificate.
//! - [`sasl`]: one connection's SASL exchange (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER from
//!   rsasl; other mechanisms from WASM plugins).
//! - [`scram`]: SCRAM credentials as Kafka stores them.
//! - [`oauth`]: validation of unsecured OAUTHBEARER tokens.
//! - [`acl`]: Kafka's ACL model and the authorizer every handler asks.

pub mod acl;
pub mod oauth;
pub mod sasl;
pub mod scram;
pub mod tls;

use crate::config::BrokerConfig;

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The mechanisms `sasl.enabled.mechanisms` gives a listener.
pub fn listener_mechanisms(config: &BrokerConfig, listener: &str) -> Vec<String> {
    config
        .listener_get(listener, "sasl.enabled.mechanisms")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect()
}

/// The mechanisms `sasl.mechanism.plugins` maps to plugins: (mechanism, NAME@VERSION).
pub fn plugin_mechanisms(config: &BrokerConfig) -> Vec<(String, String)> {
    config
        .get("sasl.mechanism.plugins")
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(m, id)| (m.trim().to_string(), id.trim().to_string()))
        .collect()
}

/// Checks the security settings that span several settings, at startup.
pub fn validate_config(config: &BrokerConfig) -> anyhow::Result<()> {
    let plugins = plugin_mechanisms(config);
    for listener in config.listeners.iter().filter(|l| l.protocol.uses_sasl()) {
        let mechanisms = listener_mechanisms(config, &listener.name);
        if mechanisms.is_empty() {
            anyhow::bail!(
                "listener {} uses {:?} but enables no SASL mechanism",
                listener.name,
                listener.protocol
            );
        }
        for mechanism in &mechanisms {
            let builtin = sasl::BUILTIN.contains(&mechanism.as_str());
            if !builtin && !plugins.iter().any(|(m, _)| m == mechanism) {
                anyhow::bail!(
                    "listener {}: SASL mechanism {mechanism} is neither built in ({}) nor provided by a plugin in sasl.mechanism.plugins",
                    listener.name,
                    sasl::BUILTIN.join(", ")
                );
            }
            if mechanism == "OAUTHBEARER" && !config.bool("sasl.oauthbearer.unsecured.validation.enable") {
                anyhow::bail!(
                    "listener {}: OAUTHBEARER needs sasl.oauthbearer.unsecured.validation.enable=true (Strom validates only unsecured tokens; do not use it in production)",
                    listener.name
                );
            }
        }
    }
    Ok(())
}
