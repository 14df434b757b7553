//! Outbound TLS: a rustls client configuration (ring provider, TLS 1.2 and 1.3) that accepts
//! any server certificate.
//!
//! Opportunistic MX TLS (RFC 7435) protects against passive eavesdropping only: MX host names
//! come from unauthenticated DNS and most MX certificates would not verify anyway, so
//! PowerMTA does not verify unless `smtp-tls-ca-file` is set (its logs say `verified=no`).
//! The handshake signature is still checked, so the session key is bound to the certificate
//! the server presented.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// What was negotiated, for accounting (`dlvTlsProtocol`, `dlvTlsCipher`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    /// The IANA cipher suite name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

impl TlsInfo {
    /// Reads protocol and cipher from a finished handshake.
    pub(crate) fn from_connection(conn: &rustls::ClientConnection) -> TlsInfo {
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|s| {
                let suite = s.suite();
                suite
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{suite:?}"))
            })
            .unwrap_or_else(|| "unknown".to_string());
        TlsInfo { protocol, cipher }
    }
}

/// The shared client configuration, built once: it holds no per-destination state.
pub(crate) fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
            let config = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .expect("ring supports TLS 1.2 and 1.3")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// The name to send as SNI: the MX host name when it is one (without a trailing dot),
/// else the peer's IP address, for which rustls sends no SNI.
pub(crate) fn server_name(mx_name: &str, ip: IpAddr) -> ServerName<'static> {
    let name = mx_name.trim_end_matches('.');
    match ServerName::try_from(name.to_string()) {
        Ok(n @ ServerName::DnsName(_)) => n,
        _ => ServerName::IpAddress(ip.into()),
    }
}

/// Accepts every certificate chain; verifies handshake signatures with the provider's
/// algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_uses_dns_names_only() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            server_name("mx1.example.com.", ip),
            ServerName::try_from("mx1.example.com").unwrap()
        );
        assert_eq!(
            server_name("192.0.2.7", ip),
            ServerName::IpAddress(ip.into())
        );
        assert_eq!(server_name("", ip), ServerName::IpAddress(ip.into()));
        assert_eq!(
            server_name("[192.0.2.1]", ip),
            ServerName::IpAddress(ip.into())
        );
    }

    #[test]
    fn config_builds_and_is_shared() {
        assert!(Arc::ptr_eq(&client_config(), &client_config()));
    }
}
