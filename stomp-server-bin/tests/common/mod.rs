//! Starting the `stomp-server` binary on free ports, for the end-to-end tests.
#![allow(dead_code, unreachable_pub)]

pub mod peer;
pub mod relay;
pub mod transport;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `host:port` of STOMP over TCP.
    pub tcp: String,
    /// `ws://host:port/path` of STOMP over WebSocket.
    pub ws: String,
    /// `http://host:port/metrics`, with `--metrics`.
    pub metrics: Option<String>,
}

impl Server {
    /// Starts the server on free ports with `extra` flags and reads where it listens.
    pub fn start(extra: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stomp-server"));
        command.stderr(Stdio::null());
        Server::spawn(command, extra)
    }

    /// As [`start`](Self::start), with its log piped to `child.stderr`, and run under
    /// `wrapper` when one is given (such as `["prlimit", "--nofile=64:64"]`).
    pub fn start_logged(wrapper: &[&str], extra: &[&str]) -> Server {
        let server = env!("CARGO_BIN_EXE_stomp-server");
        let mut command = match wrapper {
            [] => Command::new(server),
            [program, args @ ..] => {
                let mut command = Command::new(program);
                command.args(args).arg(server);
                command
            }
        };
        command.stderr(Stdio::piped());
        Server::spawn(command, extra)
    }

    fn spawn(mut command: Command, extra: &[&str]) -> Server {
        let mut child = command
            .args(["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |prefix: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {line:?}"))
                .to_owned()
        };
        let (tcp, ws) = (field("tcp="), field("ws="));
        let metrics = (line.split_whitespace())
            .find_map(|word| word.strip_prefix("metrics="))
            .map(str::to_owned);
        Server {
            child,
            tcp,
            ws,
            metrics,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `host:port` of an `http://` or `ws://` address.
pub fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap().to_owned()
}

/// The value of a counter on the `/metrics` page at `address` (`host:port`).
pub fn counter(address: &str, name: &str) -> u64 {
    let mut socket = TcpStream::connect(address).unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut page = String::new();
    socket.read_to_string(&mut page).unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {page}"))
}
