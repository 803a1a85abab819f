//! Optional TLS on a listener (rustls, TLS 1.2 and 1.3), for deployments without a
//! TLS-terminating proxy: `[gateway.tls]` / `[status.tls]` name a PEM certificate chain and
//! its private key. The handshake must finish within the header-read timeout.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// `[*.tls]`: serve HTTPS with this certificate chain and key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM file with the server certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A loaded server configuration, cheap to clone.
#[derive(Clone)]
pub struct Tls(Arc<rustls::ServerConfig>);

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls(..)")
    }
}

impl PartialEq for Tls {
    fn eq(&self, other: &Tls) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Tls {}

impl Tls {
    /// The acceptor for one connection's handshake.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.0))
    }
}

impl TlsFiles {
    /// Reads and checks both files; the error names `section.tls.cert` or `.key`, the path
    /// and what is wrong.
    pub fn load(&self, section: &str) -> Result<Tls, String> {
        let read = |key: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("{section}.tls.{key}: {}: {e}", path.display()))
        };
        let cert_pem = read("cert", &self.cert)?;
        let key_pem = read("key", &self.key)?;
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<_, _>>().map_err(|e| {
                format!("{section}.tls.cert: {}: not a PEM certificate chain ({e})", self.cert.display())
            })?;
        if certs.is_empty() {
            return Err(format!(
                "{section}.tls.cert: {}: no CERTIFICATE block; expected a PEM chain, server certificate first",
                self.cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("{section}.tls.key: {}: no usable private key ({e})", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{section}.tls: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "{section}.tls.key: {}: does not fit the certificate {} ({e})",
                    self.key.display(),
                    self.cert.display()
                )
            })?;
        Ok(Tls(Arc::new(config)))
    }
}
