//! Without the `tls` feature no listener speaks TLS: this [`Tls`] has no value, so the
//! listeners' TLS branches are never taken, and rustls is not built.

use std::time::Instant;

use tokio::net::TcpStream;

/// No TLS configuration can exist.
#[derive(Clone, Debug)]
pub(crate) struct Tls(Never);

#[derive(Clone, Debug)]
enum Never {}

impl Tls {
    pub(crate) async fn handshake(
        &self,
        _stream: TcpStream,
        _deadline: Instant,
        _peer: &str,
    ) -> Option<TcpStream> {
        match self.0 {}
    }
}
