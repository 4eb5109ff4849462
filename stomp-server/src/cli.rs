//! Command-line flags.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use stomp_broker::BrokerConfig;
use stomp_session::{HeartBeat, Limits, ServerConfig};

/// A STOMP 1.0/1.1/1.2 broker over TCP and WebSocket, with an in-memory broker for `/topic/`,
/// `/queue/`, `/chat/` and `/user/` destinations and a chat application on `/app/`.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
pub(crate) struct Args {
    /// Address for STOMP over TCP.
    #[arg(long, default_value = "127.0.0.1:61613")]
    pub(crate) tcp: SocketAddr,
    /// Address for STOMP over WebSocket.
    #[arg(long, default_value = "127.0.0.1:15674")]
    pub(crate) ws: SocketAddr,
    /// Path of the WebSocket endpoint.
    #[arg(long, default_value = "/stomp")]
    pub(crate) ws_path: String,
    /// Destination prefixes the broker serves; clients may subscribe only under these.
    #[arg(long = "broker-prefix", default_values = ["/topic/", "/queue/", "/chat/", "/user/"])]
    pub(crate) broker_prefixes: Vec<String>,
    /// Destination prefixes whose SENDs go to the application.
    #[arg(long = "app-prefix", default_values = ["/app/"])]
    pub(crate) app_prefixes: Vec<String>,
    /// The server's heart-beat offer: the period it can send at and the one it wants, in ms.
    #[arg(long, default_value = "10000,10000")]
    pub(crate) heart_beat: HeartBeat,
    /// Silence of this many heart-beat periods closes a connection.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) heart_beat_margin: f64,
    /// Most octets in one frame's body.
    #[arg(long, default_value_t = Limits::default().max_body)]
    pub(crate) max_body: usize,
    /// Most header lines in one frame.
    #[arg(long, default_value_t = Limits::default().max_headers)]
    pub(crate) max_headers: usize,
    /// Most octets in one frame's command and headers.
    #[arg(long, default_value_t = Limits::default().max_head_bytes)]
    pub(crate) max_head: usize,
    /// Most buffers waiting to be written to one connection; a consumer that falls further
    /// behind is closed with an ERROR.
    #[arg(long, default_value_t = 4096)]
    pub(crate) max_outbound: usize,
    /// Accept only this login, as `user:passcode`.
    #[arg(long)]
    pub(crate) login: Option<String>,
    /// Seconds a new connection has to send CONNECT.
    #[arg(long, default_value_t = 10)]
    pub(crate) connect_timeout: u64,
}

impl Args {
    pub(crate) fn broker_config(&self) -> BrokerConfig {
        let session = ServerConfig {
            heart_beat: self.heart_beat,
            heart_beat_margin: self.heart_beat_margin,
            connect_timeout: Duration::from_secs(self.connect_timeout),
            server: Some(format!("stomp-server/{}", env!("CARGO_PKG_VERSION"))),
            limits: Limits {
                max_body: self.max_body,
                max_headers: self.max_headers,
                max_head_bytes: self.max_head,
                ..Limits::default()
            },
            ..ServerConfig::default()
        };
        BrokerConfig {
            session,
            broker_prefixes: self.broker_prefixes.clone(),
            app_prefixes: self.app_prefixes.clone(),
            ..BrokerConfig::default()
        }
    }
}
