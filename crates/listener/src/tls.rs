//! Inbound TLS: a rustls server configuration built from `smtp-server-tls-certificate`.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration could not be built; reported at startup with the file name.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM file could not be read or holds no certificate.
    #[error("{path}: no usable certificate: {reason}")]
    Certificate {
        /// The certificate file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The PEM file holds no private key, or the key does not fit the certificate.
    #[error("{path}: no usable private key: {reason}")]
    Key {
        /// The certificate file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Builds the server configuration. `allow_tls12` / `allow_tls13` come from the
/// `smtp-server-tls-allow-tlsv1.2` / `-tlsv1.3` switches; TLS 1.0 and 1.1 do not exist in
/// rustls, which the configuration check already reported.
pub fn server_config(
    pem: &Path,
    allow_tls12: bool,
    allow_tls13: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let path = pem.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pem)
        .map_err(|e| TlsError::Certificate {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path,
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(pem).map_err(|e| TlsError::Key {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if allow_tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if allow_tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Certificate {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Key {
            path,
            reason: e.to_string(),
        })?;
    Ok(Arc::new(config))
}
