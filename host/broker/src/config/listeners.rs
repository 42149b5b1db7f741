//! Kafka's listener model: named listeners, each with a security protocol from
//! `listener.security.protocol.map`, and an advertised address per name.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    fn parse(s: &str) -> anyhow::Result<SecurityProtocol> {
        Ok(match s {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            other => bail!("unknown security protocol {other:?}"),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means every interface.
    pub host: String,
    pub port: u16,
    pub protocol: SecurityProtocol,
}

impl Listener {
    /// The address to bind.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() { "0.0.0.0" } else { &self.host };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// What to advertise when `advertised.listeners` is empty: the same address, with a
    /// wildcard host replaced by this machine's hostname.
    pub fn advertised_default(&self) -> Listener {
        let mut advertised = self.clone();
        if advertised.host.is_empty() || advertised.host == "0.0.0.0" || advertised.host == "::" {
            advertised.host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".to_string());
        }
        advertised
    }
}

pub fn parse_protocol_map(raw: &str) -> anyhow::Result<BTreeMap<String, SecurityProtocol>> {
    let mut map = BTreeMap::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .with_context(|| format!("listener.security.protocol.map entry {entry:?} is not NAME:PROTOCOL"))?;
        map.insert(
            name.to_string(),
            SecurityProtocol::parse(protocol).context("in listener.security.protocol.map")?,
        );
    }
    Ok(map)
}

/// Parses `NAME://host:port,...`.
pub fn parse_listeners(raw: &str, protocols: &BTreeMap<String, SecurityProtocol>) -> anyhow::Result<Vec<Listener>> {
    let mut listeners: Vec<Listener> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = entry
            .split_once("://")
            .with_context(|| format!("listener {entry:?} is not NAME://host:port"))?;
        let (host, port) = address
            .rsplit_once(':')
            .with_context(|| format!("listener {entry:?} has no port"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("listener {entry:?} has an invalid port {port:?}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let protocol = *protocols
            .get(name)
            .with_context(|| format!("listener name {name} is not in listener.security.protocol.map"))?;
        if listeners.iter().any(|l| l.name == name) {
            bail!("listener name {name} appears twice");
        }
        listeners.push(Listener {
            name: name.to_string(),
            host,
            port,
            protocol,
        });
    }
    Ok(listeners)
}
