//! [`Login`]: everything an async login may need (the CONNECT, the peer, the transport, the
//! WebSocket upgrade request), and [`Admit`], what a login that succeeds gives the session.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{Extensions, header};
use stomp_session::ConnectRequest;

/// How a client reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// STOMP over TCP.
    Tcp,
    /// STOMP over TLS over TCP.
    Tls,
    /// STOMP over WebSocket (through TLS or not, as the HTTP listener is).
    WebSocket,
    /// An in-memory connection ([`Server::connect_local`](crate::Server::connect_local)).
    Local,
}

/// Where a connection comes from: what every login of it may look at.
#[derive(Clone, Debug)]
pub(crate) struct Remote {
    pub(crate) address: Option<SocketAddr>,
    pub(crate) transport: Transport,
    /// The WebSocket upgrade request, its body aside.
    pub(crate) upgrade: Option<Arc<Parts>>,
}

impl Remote {
    /// A connection of `transport` from `address`.
    pub(crate) fn new(transport: Transport, address: Option<SocketAddr>) -> Remote {
        Remote {
            address,
            transport,
            upgrade: None,
        }
    }

    /// How logs name it: `tcp:127.0.0.1:5000`.
    pub(crate) fn name(&self) -> String {
        let kind = match self.transport {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::WebSocket => "ws",
            Transport::Local => "local",
        };
        match self.address {
            Some(address) => format!("{kind}:{address}"),
            None => kind.to_owned(),
        }
    }
}

/// A CONNECT to decide ([`App::authenticate`](crate::App::authenticate)), with where it came
/// from and the application's state.
///
/// ```
/// use stomp_server::{Admit, App, Login, Refused};
///
/// async fn check(login: Login) -> Result<Admit, Refused> {
///     // Spring's token pattern: a bearer token in the CONNECT frame, or a cookie on the
///     // WebSocket upgrade.
///     let token = login.bearer_token().or_else(|| login.cookie("session"));
///     match token {
///         Some("secret-ann") => Ok(Admit::user("ann").extension(42u32)),
///         _ => Err("who are you?".into()),
///     }
/// }
///
/// let app = App::new().authenticate(check);
/// # drop(app);
/// ```
pub struct Login<S = ()> {
    request: ConnectRequest,
    remote: Remote,
    state: S,
}

impl<S> fmt::Debug for Login<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("request", &self.request)
            .field("address", &self.remote.address)
            .field("transport", &self.remote.transport)
            .finish_non_exhaustive()
    }
}

impl Login {
    pub(crate) fn new(request: ConnectRequest, remote: Remote) -> Login {
        Login {
            request,
            remote,
            state: (),
        }
    }

    /// The same login with the application's state.
    pub(crate) fn with_state<S>(self, state: S) -> Login<S> {
        Login {
            request: self.request,
            remote: self.remote,
            state,
        }
    }
}

impl<S> Login<S> {
    /// The CONNECT's `login` header.
    pub fn login(&self) -> Option<&str> {
        self.request.login.as_deref()
    }

    /// The CONNECT's `passcode` header.
    pub fn passcode(&self) -> Option<&str> {
        self.request.passcode.as_ref().map(|p| p.expose())
    }

    /// The CONNECT's first header named `name`, unescaped.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.request.frame.header(name)
    }

    /// The whole CONNECT, as the session read it.
    pub fn request(&self) -> &ConnectRequest {
        &self.request
    }

    /// The token of an `Authorization: Bearer ...` header: the CONNECT's (as stompjs sends
    /// `connectHeaders`), else the WebSocket upgrade's.
    pub fn bearer_token(&self) -> Option<&str> {
        let bearer = |value: &str| -> Option<(usize, usize)> {
            let (scheme, token) = value.split_once(' ')?;
            let start = value.len() - token.trim_start().len();
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some((start, value.trim_end().len()))
        };
        // STOMP header names are case-sensitive: both spellings clients use.
        let frame = &self.request.frame;
        for name in ["Authorization", "authorization"] {
            if let Some(Cow::Borrowed(value)) = frame.header(name) {
                if let Some((start, end)) = bearer(value) {
                    return Some(&value[start..end]);
                }
            }
        }
        let value = self.upgrade()?.headers.get(header::AUTHORIZATION)?;
        let value = value.to_str().ok()?;
        bearer(value).map(|(start, end)| &value[start..end])
    }

    /// The value of cookie `name` on the WebSocket upgrade request.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        let upgrade = self.upgrade()?;
        upgrade
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The peer's address, when the transport has one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.remote.address
    }

    /// How the client reached the server.
    pub fn transport(&self) -> Transport {
        self.remote.transport
    }

    /// The WebSocket upgrade request, its body aside: headers, URI, and the extensions an
    /// axum layer put there (the user an authentication middleware found, for one).
    pub fn upgrade(&self) -> Option<&Parts> {
        self.remote.upgrade.as_deref()
    }

    /// The application's state.
    pub fn state(&self) -> &S {
        &self.state
    }
}

/// A login that succeeded: the user the session acts as (CONNECTED carries `user-name`, and
/// [`Handle::send_to_user`](crate::Handle::send_to_user) reaches it), and data of the session
/// that every one of its handlers reads ([`Context::extensions`](crate::Context::extensions),
/// the [`Extension`](crate::Extension) argument).
#[derive(Clone, Debug, Default)]
pub struct Admit {
    pub(crate) user: Option<String>,
    pub(crate) extensions: Extensions,
}

impl Admit {
    /// The session acts as `user`.
    pub fn user(user: impl Into<String>) -> Admit {
        Admit {
            user: Some(user.into()),
            extensions: Extensions::new(),
        }
    }

    /// The session acts as nobody.
    pub fn anonymous() -> Admit {
        Admit::default()
    }

    /// Adds a value of the session's, one per type.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Admit {
        self.extensions.insert(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stomp_session::{ServerConfig, ServerEvent, ServerSession};

    fn login(connect: &str, upgrade: Option<&[(&str, &str)]>) -> Login {
        let now = std::time::Instant::now();
        let mut session = ServerSession::new(ServerConfig::default(), now);
        session.handle_input(now, connect.as_bytes());
        let Some(ServerEvent::Connect(request)) = session.poll_event() else {
            panic!("no CONNECT");
        };
        let mut remote = Remote::new(Transport::WebSocket, None);
        remote.upgrade = upgrade.map(|headers| {
            let mut request = axum::http::Request::builder().uri("/stomp");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            Arc::new(request.body(()).unwrap().into_parts().0)
        });
        Login::new(*request, remote)
    }

    #[test]
    fn the_token_comes_from_connect_first_then_the_upgrade() {
        let connect = "CONNECT\naccept-version:1.2\nhost:/\nAuthorization:Bearer abc \n\n\0";
        assert_eq!(login(connect, None).bearer_token(), Some("abc"));
        let plain = "CONNECT\naccept-version:1.2\nhost:/\n\n\0";
        let upgrade = [("authorization", "bearer xyz"), ("cookie", "a=1; sid=s2")];
        let login = login(plain, Some(&upgrade));
        assert_eq!(login.bearer_token(), Some("xyz"));
        assert_eq!(login.cookie("sid"), Some("s2"));
        assert_eq!(login.cookie("a"), Some("1"));
        assert_eq!(login.cookie("b"), None);
    }
}
