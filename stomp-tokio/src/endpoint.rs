//! Where to connect: the schemes a [`Client`](crate::Client) understands, parsed once.

use tokio_tungstenite::tungstenite::http::Uri;

use crate::Error;

/// How the bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `host:port` or `tcp://host:port`.
    Tcp,
    /// `tls://host:port` (also `ssl://` and `stomp+ssl://`, as ActiveMQ names it).
    Tls,
    /// `ws://host:port/path`.
    WebSocket,
    /// `wss://host:port/path`.
    SecureWebSocket,
}

/// One address a client may connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// As the application wrote it, for events and errors.
    pub(crate) text: String,
    pub(crate) scheme: Scheme,
    /// What to open a TCP connection to: `host:port`.
    pub(crate) address: String,
    /// The host alone (no brackets around an IPv6 address): the name TLS checks the
    /// certificate against.
    pub(crate) host: String,
}

impl Endpoint {
    /// A name for a stream the application opened: nothing to connect to.
    pub(crate) fn named(text: String) -> Endpoint {
        Endpoint {
            text,
            scheme: Scheme::Tcp,
            address: String::new(),
            host: String::new(),
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Endpoint, Error> {
        let invalid = |why: &str| Error::InvalidEndpoint(format!("{text}: {why}"));
        let (scheme, rest) = match text.split_once("://") {
            None => (Scheme::Tcp, text),
            Some(("tcp", rest)) => (Scheme::Tcp, rest),
            Some(("tls" | "ssl" | "stomp+ssl", rest)) => (Scheme::Tls, rest),
            Some(("ws", _)) => return Endpoint::url(text, Scheme::WebSocket, 80),
            Some(("wss", _)) => return Endpoint::url(text, Scheme::SecureWebSocket, 443),
            Some(_) => {
                return Err(invalid(
                    "the schemes served are tcp://, tls:// (ssl://), ws:// and wss://",
                ));
            }
        };
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(invalid("expected host:port"));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(invalid("expected host:port"));
        }
        Ok(Endpoint {
            text: text.to_owned(),
            scheme,
            address: rest.to_owned(),
            host: unbracketed(host).to_owned(),
        })
    }

    fn url(text: &str, scheme: Scheme, default_port: u16) -> Result<Endpoint, Error> {
        let uri: Uri = text
            .parse()
            .map_err(|e| Error::InvalidEndpoint(format!("{text}: {e}")))?;
        let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
            return Err(Error::InvalidEndpoint(format!("{text}: no host")));
        };
        let port = uri.port_u16().unwrap_or(default_port);
        Ok(Endpoint {
            text: text.to_owned(),
            scheme,
            address: format!("{host}:{port}"),
            host: unbracketed(host).to_owned(),
        })
    }

    /// Whether the connection is wrapped in TLS.
    pub(crate) fn is_secure(&self) -> bool {
        matches!(self.scheme, Scheme::Tls | Scheme::SecureWebSocket)
    }

    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self.scheme, Scheme::WebSocket | Scheme::SecureWebSocket)
    }
}

fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_and_its_address() {
        let cases = [
            (
                "127.0.0.1:61613",
                Scheme::Tcp,
                "127.0.0.1:61613",
                "127.0.0.1",
            ),
            ("tcp://broker:61613", Scheme::Tcp, "broker:61613", "broker"),
            ("tls://broker:61614", Scheme::Tls, "broker:61614", "broker"),
            ("ssl://[::1]:61614", Scheme::Tls, "[::1]:61614", "::1"),
            ("stomp+ssl://mq:61612", Scheme::Tls, "mq:61612", "mq"),
            (
                "ws://localhost:15674/stomp",
                Scheme::WebSocket,
                "localhost:15674",
                "localhost",
            ),
            (
                "ws://localhost/stomp",
                Scheme::WebSocket,
                "localhost:80",
                "localhost",
            ),
            (
                "wss://mq.example/ws",
                Scheme::SecureWebSocket,
                "mq.example:443",
                "mq.example",
            ),
            (
                "wss://[::1]:8443/ws",
                Scheme::SecureWebSocket,
                "[::1]:8443",
                "::1",
            ),
        ];
        for (text, scheme, address, host) in cases {
            let endpoint = Endpoint::parse(text).unwrap();
            assert_eq!(
                (
                    endpoint.scheme,
                    endpoint.address.as_str(),
                    endpoint.host.as_str()
                ),
                (scheme, address, host),
                "{text}"
            );
        }
    }

    #[test]
    fn what_is_not_an_endpoint_says_why() {
        for text in [
            "http://x:1",
            "localhost",
            "tcp://:61613",
            "tls://host:port",
            "ws://",
        ] {
            match Endpoint::parse(text) {
                Err(Error::InvalidEndpoint(why)) => assert!(why.starts_with(text), "{why}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
