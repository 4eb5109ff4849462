//! [`Tls`]: a certificate and its key, for the TCP and HTTP listeners to speak TLS (STOMP
//! over TLS, and `https://` with `wss://` for STOMP over WebSocket), through rustls.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use std::time::Instant;

use tokio::net::TcpStream;
use tokio::time::timeout_at;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// The TLS side of a listener: [`Server::serve_tls`](crate::Server::serve_tls) and
/// [`Server::serve_https`](crate::Server::serve_https) take one.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let tls = stomp_server::Tls::from_pem_files("cert.pem", "key.pem")?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// A certificate chain (PEM, the server's certificate first) and its private key (PEM:
    /// PKCS#8, PKCS#1 or SEC1), read from files.
    pub fn from_pem_files(
        certificates: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<Tls> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Tls::from_pem(&read(certificates.as_ref())?, &read(key.as_ref())?)
    }

    /// A certificate chain and its private key, in PEM.
    pub fn from_pem(certificates: &[u8], key: &[u8]) -> io::Result<Tls> {
        let chain = CertificateDer::pem_slice_iter(certificates)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("certificates: {e}")))?;
        if chain.is_empty() {
            return Err(invalid("no certificate in the PEM".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(format!("key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Tls::new(Arc::new(config)))
    }

    /// A configuration made by the application (client certificates, several names...).
    pub fn new(config: Arc<ServerConfig>) -> Tls {
        Tls {
            acceptor: TlsAcceptor::from(config),
        }
    }

    /// The handshake of a client accepted at a listener, done by `deadline`; `None` (logged)
    /// when it fails or is late.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        deadline: Instant,
        peer: &str,
    ) -> Option<TlsStream<TcpStream>> {
        match timeout_at(deadline.into(), self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake not done in time");
                None
            }
        }
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {why}"))
}
