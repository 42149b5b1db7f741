//! TLS for SSL and SASL_SSL listeners, with rustls. Each such listener keeps its current
//! `ServerConfig` behind a lock; new connections take whatever is current, so replacing the
//! keystore or truststore file rotates certificates without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context};
use parking_lot::RwLock;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{BrokerConfig, Listener};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    None,
    Requested,
    Required,
}

/// What a listener's TLS is built from.
#[derive(Debug, Clone)]
struct TlsSource {
    keystore: PathBuf,
    truststore: Option<PathBuf>,
    client_auth: ClientAuth,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
}

/// The TLS side of one listener.
pub struct TlsListener {
    pub listener: String,
    source: TlsSource,
    current: RwLock<(Arc<ServerConfig>, Vec<Option<SystemTime>>)>,
}

impl TlsListener {
    /// Reads the listener's keystore (and truststore) now; fails with the file and reason.
    pub fn load(config: &BrokerConfig, listener: &Listener) -> anyhow::Result<TlsListener> {
        let get = |name| config.listener_get(&listener.name, name);
        let keystore = get("ssl.keystore.location");
        if keystore.is_empty() {
            bail!(
                "listener {} uses {:?} but ssl.keystore.location is empty (set it, or listener.name.{}.ssl.keystore.location)",
                listener.name,
                listener.protocol,
                listener.name.to_ascii_lowercase()
            );
        }
        let client_auth = match get("ssl.client.auth") {
            "required" => ClientAuth::Required,
            "requested" => ClientAuth::Requested,
            _ => ClientAuth::None,
        };
        let truststore = Some(get("ssl.truststore.location"))
            .filter(|t| !t.is_empty())
            .map(PathBuf::from);
        if client_auth != ClientAuth::None && truststore.is_none() {
            bail!(
                "listener {}: ssl.client.auth={} needs ssl.truststore.location (the CA certificates client certificates are checked against)",
                listener.name,
                get("ssl.client.auth")
            );
        }
        let mut versions = Vec::new();
        for name in get("ssl.enabled.protocols").split(',').map(str::trim) {
            match name {
                "TLSv1.2" => versions.push(&rustls::version::TLS12),
                "TLSv1.3" => versions.push(&rustls::version::TLS13),
                _ => {}
            }
        }
        if versions.is_empty() {
            bail!(
                "listener {}: ssl.enabled.protocols enables no TLS version",
                listener.name
            );
        }
        let source = TlsSource {
            keystore: PathBuf::from(keystore),
            truststore,
            client_auth,
            versions,
        };
        let config = build(&source).with_context(|| format!("TLS for listener {}", listener.name))?;
        let stamps = source.stamps();
        Ok(TlsListener {
            listener: listener.name.clone(),
            source,
            current: RwLock::new((Arc::new(config), stamps)),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read().0))
    }

    /// Rebuilds the config if a file changed since the last load. A file that fails to load
    /// leaves the previous config in place (and is retried at the next check).
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let stamps = self.source.stamps();
        if stamps == self.current.read().1 {
            return Ok(false);
        }
        let config = build(&self.source).with_context(|| format!("reloading TLS for listener {}", self.listener))?;
        *self.current.write() = (Arc::new(config), stamps);
        Ok(true)
    }
}

impl TlsSource {
    fn stamps(&self) -> Vec<Option<SystemTime>> {
        let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut stamps = vec![stamp(&self.keystore)];
        if let Some(t) = &self.truststore {
            stamps.push(stamp(t));
        }
        stamps
    }
}

fn build(source: &TlsSource) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pem = std::fs::read(&source.keystore)
        .with_context(|| format!("reading ssl.keystore.location {}", source.keystore.display()))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: unreadable PEM certificate", source.keystore.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", source.keystore.display());
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("{}: unreadable PEM private key", source.keystore.display()))?
        .with_context(|| {
            format!(
                "{} holds no unencrypted private key (PKCS#8, RSA or EC PEM)",
                source.keystore.display()
            )
        })?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&source.versions)
        .context("TLS versions")?;
    let builder = match (&source.truststore, source.client_auth) {
        (_, ClientAuth::None) | (None, _) => builder.with_no_client_auth(),
        (Some(truststore), auth) => {
            let pem = std::fs::read(truststore)
                .with_context(|| format!("reading ssl.truststore.location {}", truststore.display()))?;
            let mut roots = RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.with_context(|| format!("{}: unreadable PEM certificate", truststore.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("{}: not a usable CA certificate", truststore.display()))?;
            }
            if roots.is_empty() {
                bail!("{} holds no CA certificate", truststore.display());
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().context("client certificate verifier")?)
        }
    };
    builder
        .with_single_cert(certs, key)
        .context("the keystore's certificate and private key do not form a usable pair")
}

/// Kafka's default principal for a client certificate: `User:` and the subject's
/// distinguished name in RFC 2253 form (most specific first: `CN=alice,OU=test,O=Strom`).
pub fn principal_from_certificate(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let mut parts = Vec::new();
        for attribute in rdn.iter() {
            let oid = attribute.attr_type().to_id_string();
            let name = match oid.as_str() {
                "2.5.4.3" => "CN".to_string(),
                "2.5.4.11" => "OU".to_string(),
                "2.5.4.10" => "O".to_string(),
                "2.5.4.7" => "L".to_string(),
                "2.5.4.8" => "ST".to_string(),
                "2.5.4.6" => "C".to_string(),
                "2.5.4.9" => "STREET".to_string(),
                "0.9.2342.19200300.100.1.25" => "DC".to_string(),
                "0.9.2342.19200300.100.1.1" => "UID".to_string(),
                _ => oid,
            };
            let value = attribute.as_str().ok()?;
            parts.push(format!("{name}={}", escape_rfc2253(value)));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(format!("User:{}", rdns.join(",")))
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let leading = i == 0 && (c == ' ' || c == '#');
        let trailing = i + 1 == value.chars().count() && c == ' ';
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') || leading || trailing {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
