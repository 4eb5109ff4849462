//! How a client session connects: [`ClientConfig`].

use std::time::Duration;

use stomp_codec::{Limits, Version};

use crate::heartbeat::HeartBeat;
use crate::types::Secret;

/// How a client connects.
#[derive(Clone)]
pub struct ClientConfig {
    /// The `host` header: the virtual host to connect to (RabbitMQ: `/`). Required from 1.1.
    pub(super) host: String,
    /// The `login` header, if any.
    pub(super) login: Option<String>,
    /// The `passcode` header, if any. Never shown by `Debug`.
    pub(super) passcode: Option<Secret>,
    /// The versions offered in `accept-version`. Offering only 1.0 sends no `accept-version`.
    pub(super) versions: Vec<Version>,
    /// The `heart-beat` offer.
    pub(super) heart_beat: HeartBeat,
    /// Silence from the server longer than this many receive periods closes the session.
    pub(super) heart_beat_margin: f64,
    /// Sends STOMP instead of CONNECT (1.1+ servers treat them alike).
    pub(super) use_stomp_command: bool,
    /// How long to wait for CONNECTED.
    pub(super) connect_timeout: Duration,
    /// How long a graceful DISCONNECT waits for its RECEIPT.
    pub(super) disconnect_timeout: Duration,
    /// Limits on frames from the server.
    pub(super) limits: Limits,
    /// Further CONNECT headers, after the ones the session writes.
    pub(super) connect_headers: Vec<(String, String)>,
}

impl ClientConfig {
    /// Defaults for `host`: every version, no heart-beats, a margin of 3 periods, 30 s to
    /// connect and 5 s for the DISCONNECT receipt.
    pub fn new(host: impl Into<String>) -> ClientConfig {
        ClientConfig {
            host: host.into(),
            login: None,
            passcode: None,
            versions: Version::ALL.to_vec(),
            heart_beat: HeartBeat::NONE,
            // Not 2: ActiveMQ checks once a period whether it wrote anything in the last one,
            // so its heart-beat can come two whole periods after its last frame (its first,
            // two periods after CONNECTED), and a margin of 2 races it.
            heart_beat_margin: 3.0,
            use_stomp_command: false,
            connect_timeout: Duration::from_secs(30),
            disconnect_timeout: Duration::from_secs(5),
            limits: Limits::default(),
            connect_headers: Vec::new(),
        }
    }

    /// The same configuration with a further CONNECT header, such as a token in
    /// `Authorization` (Spring's pattern) or ActiveMQ's `client-id`. Those the session writes
    /// itself (`accept-version`, `host`, `login`, `passcode`, `heart-beat`) come first and win.
    #[must_use]
    pub fn with_connect_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.connect_headers.push((name.into(), value.into()));
        self
    }

    /// The same configuration with a login and passcode.
    #[must_use]
    pub fn with_login(mut self, login: impl Into<String>, passcode: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self.passcode = Some(Secret::new(passcode));
        self
    }

    /// The same configuration with a heart-beat offer.
    #[must_use]
    pub fn with_heart_beat(mut self, heart_beat: HeartBeat) -> Self {
        self.heart_beat = heart_beat;
        self
    }

    /// The same configuration offering only these versions.
    #[must_use]
    pub fn with_versions(mut self, versions: &[Version]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// The same configuration for another virtual host.
    #[must_use]
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// The `host` header: the virtual host to connect to (RabbitMQ: `/`). Required from 1.1.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The `login` header, if any.
    pub fn login(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// The `passcode` header, if any. Never shown by `Debug`.
    pub fn passcode(&self) -> Option<&Secret> {
        self.passcode.as_ref()
    }

    /// The versions offered in `accept-version`. Offering only 1.0 sends no `accept-version`.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// The `heart-beat` offer.
    pub fn heart_beat(&self) -> HeartBeat {
        self.heart_beat
    }

    /// Sets [`heart_beat_margin`](Self::heart_beat_margin).
    #[must_use]
    pub fn with_heart_beat_margin(mut self, heart_beat_margin: f64) -> Self {
        self.heart_beat_margin = heart_beat_margin;
        self
    }

    /// Silence from the server longer than this many receive periods closes the session
    /// (default 3: a server may leave up to two periods between its frames, as ActiveMQ does).
    pub fn heart_beat_margin(&self) -> f64 {
        self.heart_beat_margin
    }

    /// Sets [`use_stomp_command`](Self::use_stomp_command).
    #[must_use]
    pub fn with_use_stomp_command(mut self, use_stomp_command: bool) -> Self {
        self.use_stomp_command = use_stomp_command;
        self
    }

    /// Sends STOMP instead of CONNECT (1.1+ servers treat them alike).
    pub fn use_stomp_command(&self) -> bool {
        self.use_stomp_command
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// How long to wait for CONNECTED.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Sets [`disconnect_timeout`](Self::disconnect_timeout).
    #[must_use]
    pub fn with_disconnect_timeout(mut self, disconnect_timeout: Duration) -> Self {
        self.disconnect_timeout = disconnect_timeout;
        self
    }

    /// How long a graceful DISCONNECT waits for its RECEIPT.
    pub fn disconnect_timeout(&self) -> Duration {
        self.disconnect_timeout
    }

    /// Sets [`limits`](Self::limits).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Limits on frames from the server.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("login", &self.login)
            .field("passcode", &self.passcode)
            .field("versions", &self.versions)
            .field("heart_beat", &self.heart_beat)
            .field("heart_beat_margin", &self.heart_beat_margin)
            .field("use_stomp_command", &self.use_stomp_command)
            .field("connect_timeout", &self.connect_timeout)
            .field("disconnect_timeout", &self.disconnect_timeout)
            .field("limits", &self.limits)
            .field(
                "connect_headers",
                // Names only: the values may be secrets.
                &self
                    .connect_headers
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
