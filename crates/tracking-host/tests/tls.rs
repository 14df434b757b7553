//! HTTPS served by the host itself: handshake on accept, then the same answers and events,
//! with the TCP peer as the client address. The certificate is the fixture the SMTP
//! listener tests use (copied from crates/petrel/tests/fixtures); the client pins it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use petrel_tracking::Action;
use petrel_tracking_host::PIXEL_GIF;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-cert.pem");

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config() -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(PEM)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(PEM).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs.clone(), key)
        .unwrap();
    (Arc::new(config), certs[0].clone())
}

/// Accepts exactly the expected certificate (the fixture is self-signed with CA:TRUE, which
/// WebPKI refuses as an end-entity certificate), with real signature checks.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("unexpected certificate".into()))
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[tokio::test]
async fn https_pixel_and_click() {
    let (server, cert) = server_config();
    let h = Harness::start_with(Some(server)).await;
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            cert,
            provider: provider(),
        }))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut c = HttpClient::new(tls);

    let r = c
        .send(
            "GET",
            &format!("/o/{}", open_token(Action::InitialOpen)),
            &[("User-Agent", BROWSER)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, PIXEL_GIF.to_vec());
    assert_eq!(r.header("server"), Some("petrel"));
    let url = "https://example.com/secure";
    let r = c
        .send(
            "GET",
            &format!("/c/{}", click_token(url, None)),
            &[("User-Agent", BROWSER)],
        )
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(url));
    let r = c.send("HEAD", "/c/forged", &[]).await;
    assert_eq!(r.status, 404);

    // A client speaking plain HTTP to the TLS port is dropped at the handshake and gets no
    // HTTP answer; the TLS connection keeps working.
    let mut plain = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer))
        .await
        .expect("plain connection not closed");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let r = c.send("GET", "/o/forged", &[]).await;
    assert_eq!(r.status, 404);

    // The open connection does not hold up shutdown once it is idle.
    let events = h.finish().await;
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["initial_open", "click"]);
    assert_eq!(events[0]["ip_address"], "127.0.0.1");
    assert_eq!(events[1]["target_link_url"], url);
    drop(c);
}
