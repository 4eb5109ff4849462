//! TLS for `tls://` and `wss://` endpoints: rustls with the ring provider, trusting the
//! system's root certificates unless the application gives its own roots or configuration.

use std::sync::Arc;

use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Where a client's TLS trust comes from.
#[derive(Clone, Debug, Default)]
pub(crate) enum Trust {
    /// The system's root certificates (rustls-native-certs), loaded at the first TLS connect.
    #[default]
    System,
    /// These roots only.
    Roots(Arc<RootCertStore>),
    /// A configuration made by the application (client certificates, ALPN, a provider...).
    Config(Arc<ClientConfig>),
}

impl Trust {
    /// The connector this trust gives.
    pub(crate) fn connector(&self) -> Result<TlsConnector, rustls::Error> {
        let config = match self {
            Trust::Config(config) => config.clone(),
            Trust::Roots(roots) => config(roots.clone())?,
            Trust::System => config(Arc::new(system_roots()?))?,
        };
        Ok(TlsConnector::from(config))
    }
}

/// A client configuration trusting `roots`. The provider is named rather than taken from the
/// process default, which is ambiguous when another crate enables a second provider.
fn config(roots: Arc<RootCertStore>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn system_roots() -> Result<RootCertStore, rustls::Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = match found.errors.first() {
            Some(e) => format!("no system root certificates could be loaded: {e}"),
            None => "no system root certificates found".to_owned(),
        };
        return Err(rustls::Error::General(why));
    }
    Ok(roots)
}
