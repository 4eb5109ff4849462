//! [`RelayConfig`]: where the other broker is, how to log in, and how destinations map to
//! its names.

use std::fmt;
use std::time::Duration;

use stomp_session::HeartBeat;
use stomp_tokio::{Client, ClientBuilder, Reconnect};

/// The header naming the node a message to a user was sent from: that node delivered it
/// to its own sessions already.
pub(crate) const NODE_HEADER: &str = "x-stomp-node";
/// The header carrying the user destination (such as `/queue/replies`) a message to a user
/// is for.
pub(crate) const USER_DESTINATION_HEADER: &str = "x-stomp-user-destination";

/// How a server relays its broker destinations to RabbitMQ or ActiveMQ (see
/// [`ServerBuilder::relay`](crate::ServerBuilder::relay) for the connection model).
///
/// ```
/// use stomp_server::RelayConfig;
///
/// let relay = RelayConfig::parse("stomp://guest:guest@127.0.0.1:61613/")?
///     .failover("stomp://guest:guest@10.0.0.2:61613/")?
///     .map("/chat/", "/topic/chat.")
///     .prefetch(100);
/// assert_eq!(relay.remote("/chat/lobby"), "/topic/chat.lobby");
/// assert_eq!(relay.remote("/queue/jobs"), "/queue/jobs");
/// # Ok::<(), stomp_server::RelayUrlError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RelayConfig {
    endpoints: Vec<String>,
    login: Option<(String, String)>,
    vhost: String,
    map: Vec<(String, String)>,
    prefetch: u32,
    connections: usize,
    heart_beat: HeartBeat,
    restore: bool,
    user_prefix: String,
    max_reconnect_delay: Duration,
}

/// A relay address that is not `stomp://[login:passcode@]host:port[/vhost]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayUrlError {
    url: String,
    why: &'static str,
}

impl fmt::Display for RelayUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "relay address {:?}: {} (expected stomp://[login:passcode@]host:port[/vhost])",
            self.url, self.why
        )
    }
}

impl std::error::Error for RelayUrlError {}

/// One parsed relay address.
#[derive(Debug)]
struct Address {
    endpoint: String,
    login: Option<(String, String)>,
    vhost: String,
}

fn parse_address(url: &str) -> Result<Address, RelayUrlError> {
    let fail = |why| RelayUrlError {
        url: masked(url),
        why,
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("stomp://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("stomp+ssl://") {
        (true, rest)
    } else {
        return Err(fail("the scheme must be stomp:// or stomp+ssl://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, ""),
    };
    let (login, host) = match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let (login, passcode) = credentials
                .split_once(':')
                .ok_or_else(|| fail("the credentials must be login:passcode"))?;
            let decode = |s: &str| decode(s).ok_or_else(|| fail("a bad %-escape"));
            (Some((decode(login)?, decode(passcode)?)), host)
        }
        None => (None, authority),
    };
    let port = host
        .rsplit_once(':')
        .and_then(|(name, port)| (!name.is_empty()).then_some(port))
        .ok_or_else(|| fail("the host and port are missing"))?;
    if port.parse::<u16>().is_err() {
        return Err(fail("the port is not a number"));
    }
    // RabbitMQ's default virtual host is `/`, which a URL path writes as nothing or `%2F`.
    let vhost = match decode(path).ok_or_else(|| fail("a bad %-escape"))? {
        vhost if vhost.is_empty() => "/".to_owned(),
        vhost => vhost,
    };
    let endpoint = if tls {
        format!("tls://{host}")
    } else {
        host.to_owned()
    };
    Ok(Address {
        endpoint,
        login,
        vhost,
    })
}

/// `url` with its passcode hidden, for errors and logs.
fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((credentials, _)) => match credentials.split_once(':') {
            Some((login, _)) => format!("{scheme}://{login}:***{}", &rest[credentials.len()..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Percent-decoding of a URL part; `None` for a bad escape or octets that are not UTF-8.
fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

impl RelayConfig {
    /// A relay to the broker at `url`, `stomp://[login:passcode@]host:port[/vhost]` (or
    /// `stomp+ssl://` for TLS), with the defaults: `/chat/ROOM` relayed as
    /// `/topic/chat.ROOM` and other destinations under their own names, a prefetch of 64,
    /// 2 broker connections for the topic subscriptions sessions share (besides the system
    /// connection, the users' and each session's own), heart-beats of
    /// 10000,10000 ms on every broker connection, and sessions closed with an ERROR when their
    /// broker connection is lost.
    pub fn parse(url: &str) -> Result<RelayConfig, RelayUrlError> {
        let address = parse_address(url)?;
        Ok(RelayConfig {
            endpoints: vec![address.endpoint],
            login: address.login,
            vhost: address.vhost,
            map: vec![("/chat/".into(), "/topic/chat.".into())],
            prefetch: 64,
            connections: 2,
            heart_beat: HeartBeat::from_millis(10_000, 10_000),
            restore: false,
            user_prefix: "/topic/stomp-user.".into(),
            max_reconnect_delay: Duration::from_secs(2),
        })
    }

    /// Adds an address tried when the ones before are away (the credentials and virtual host
    /// are the first address's).
    pub fn failover(mut self, url: &str) -> Result<RelayConfig, RelayUrlError> {
        self.endpoints.push(parse_address(url)?.endpoint);
        Ok(self)
    }

    /// Relays destinations under `local` (such as `/chat/`) as the other broker's under
    /// `remote` (such as `/topic/chat.`), and the other way for what it delivers; the longest
    /// matching prefix wins, and a destination under no prefix keeps its name.
    pub fn map(mut self, local: impl Into<String>, remote: impl Into<String>) -> RelayConfig {
        let local = local.into();
        self.map.retain(|(l, _)| *l != local);
        self.map.push((local, remote.into()));
        self
    }

    /// How many messages the other broker may send each relayed subscription before the
    /// client took them (default 64): its `prefetch-count` (RabbitMQ) and
    /// `activemq.prefetchSize` (ActiveMQ). This is all a node holds for a subscription.
    pub fn prefetch(mut self, messages: u32) -> RelayConfig {
        self.prefetch = messages.max(1);
        self
    }

    /// Broker connections for the `auto` topic subscriptions the node's sessions share,
    /// besides the system connection and the users' (default 2). What a session does alone
    /// (its SENDs, its queue and acknowledged subscriptions) goes over a connection of its
    /// own, opened when first needed and closed with the session, so that a frame the broker
    /// refuses (which ends the connection it came on) costs no other client anything.
    pub fn connections(mut self, connections: usize) -> RelayConfig {
        self.connections = connections.max(1);
        self
    }

    /// The heart-beats each broker connection asks for (default 10000,10000 ms), whatever
    /// the clients' are.
    pub fn heart_beat(mut self, heart_beat: HeartBeat) -> RelayConfig {
        self.heart_beat = heart_beat;
        self
    }

    /// When a broker connection is lost: `false` (the default) closes each session with a
    /// subscription on it with an ERROR; `true` keeps the sessions, and their subscriptions
    /// are restored once the connection is back (messages unacknowledged at the loss are the
    /// broker's to redeliver).
    pub fn restore_subscriptions(mut self, restore: bool) -> RelayConfig {
        self.restore = restore;
        self
    }

    /// Where messages to a user go on the other broker (default `/topic/stomp-user.`, then
    /// the user's name, escaped): each node with a session of the user subscribes there.
    pub fn user_prefix(mut self, prefix: impl Into<String>) -> RelayConfig {
        self.user_prefix = prefix.into();
        self
    }

    /// The longest pause between reconnect attempts (default 2 s): the broker is used again
    /// within about this long once it is back.
    pub fn max_reconnect_delay(mut self, delay: Duration) -> RelayConfig {
        self.max_reconnect_delay = delay.max(Duration::from_millis(10));
        self
    }

    /// The other broker's name for local destination `destination`.
    pub fn remote(&self, destination: &str) -> String {
        match self.rule(destination) {
            Some((local, remote)) => format!("{remote}{}", &destination[local.len()..]),
            None => destination.to_owned(),
        }
    }

    /// The rule for `destination`: the longest local prefix it starts with.
    pub(crate) fn rule(&self, destination: &str) -> Option<(&str, &str)> {
        self.map
            .iter()
            .filter(|(local, _)| destination.starts_with(local.as_str()))
            .max_by_key(|(local, _)| local.len())
            .map(|(l, r)| (l.as_str(), r.as_str()))
    }

    pub(crate) fn prefetch_count(&self) -> u32 {
        self.prefetch
    }

    pub(crate) fn pool(&self) -> usize {
        self.connections
    }

    pub(crate) fn restores(&self) -> bool {
        self.restore
    }

    /// The other broker's destination for `user`'s messages. Characters other than ASCII
    /// letters, digits, `-` and `_` are escaped as `=XX`, so that no name can reach into
    /// another's (RabbitMQ reads `.`, `*` and `#` in routing keys).
    pub(crate) fn user_destination(&self, user: &str) -> String {
        let mut out = self.user_prefix.clone();
        for b in user.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => out.push(b as char),
                _ => out.push_str(&format!("={b:02X}")),
            }
        }
        out
    }

    /// A client for one broker connection, reconnecting for ever.
    pub(crate) fn client(&self) -> ClientBuilder {
        let mut builder = Client::builder(self.endpoints[0].as_str())
            .host(self.vhost.as_str())
            .heart_beat(self.heart_beat)
            .subscription_buffer(self.prefetch as usize)
            .reconnect(
                Reconnect::new()
                    .with_initial_delay(Duration::from_millis(100))
                    .with_max_delay(self.max_reconnect_delay),
            );
        for endpoint in &self.endpoints[1..] {
            builder = builder.failover(endpoint.as_str());
        }
        if let Some((login, passcode)) = &self.login {
            builder = builder.login(login.as_str(), passcode.as_str());
        }
        builder
    }

    /// The pause before first-connect attempt `attempt` (from 0): as the reconnect policy's,
    /// doubling from 100 ms to the longest delay, drawn between half and all of it.
    pub(crate) fn retry_delay(&self, attempt: u32) -> Duration {
        let base = Reconnect::new()
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(self.max_reconnect_delay)
            .base_delay(attempt);
        base.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    /// The addresses, for logs.
    pub(crate) fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_credentials_virtual_host_and_tls() {
        let a = parse_address("stomp://guest:gu%40st@127.0.0.1:61613/").unwrap();
        assert_eq!(a.endpoint, "127.0.0.1:61613");
        assert_eq!(a.login, Some(("guest".into(), "gu@st".into())));
        assert_eq!(a.vhost, "/");
        let a = parse_address("stomp+ssl://broker.example:61614/prod").unwrap();
        assert_eq!(a.endpoint, "tls://broker.example:61614");
        assert_eq!((a.login, a.vhost.as_str()), (None, "prod"));
        assert_eq!(parse_address("stomp://[::1]:61613/%2F").unwrap().vhost, "/");
        for bad in [
            "tcp://h:1",
            "stomp://h",
            "stomp://h:port",
            "stomp://:1",
            "stomp://user@h:1",
            "stomp://h:1/%zz",
        ] {
            let error = parse_address(bad).err().unwrap_or_else(|| panic!("{bad}"));
            assert!(error.to_string().contains(bad), "{error}");
        }
        // A passcode never shows in an error.
        let error = parse_address("stomp://guest:s3cret@h:x/").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert!(error.to_string().contains("guest:***@h:x/"), "{error}");
    }

    #[test]
    fn destinations_map_by_the_longest_prefix_and_users_are_escaped() {
        let relay = RelayConfig::parse("stomp://h:1")
            .unwrap()
            .map("/chat/vip/", "/queue/vip.");
        assert_eq!(relay.remote("/chat/lobby"), "/topic/chat.lobby");
        assert_eq!(relay.remote("/chat/vip/a"), "/queue/vip.a");
        assert_eq!(relay.remote("/topic/news"), "/topic/news");
        assert_eq!(
            relay.user_destination("al.ice*#"),
            "/topic/stomp-user.al=2Eice=2A=23"
        );
        assert_ne!(
            relay.user_destination("a.b"),
            relay.user_destination("a=2Eb")
        );
    }
}
