//! `stomp-server`: a STOMP broker over TCP (default 127.0.0.1:61613) and WebSocket (default
//! ws://127.0.0.1:15674/stomp), built on the sans-IO stomp-session and stomp-broker crates.
//!
//! Both transports drive the same sessions: one task per connection feeds received bytes to
//! the broker task and writes what it hands back, with one timer per connection re-armed from
//! the session's next deadline. SIGINT (Ctrl-C) and SIGTERM close every client with an ERROR
//! after writing out what was queued for it.

mod chat;
mod cli;
mod connection;
mod hub;
mod tcp;
mod ws;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use stomp_broker::{Authorizer, Broker};
use stomp_session::ConnectRequest;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tracing_subscriber::EnvFilter;

/// Accepts one login, given as `user:passcode`, compared in constant time.
struct OneLogin {
    login: String,
    passcode: String,
}

impl Authorizer for OneLogin {
    fn connect(&self, request: &ConnectRequest) -> Result<(), String> {
        let login = request.login.as_deref().unwrap_or_default();
        let passcode = request
            .passcode
            .as_ref()
            .map(|p| p.expose())
            .unwrap_or_default();
        let same_login = login.as_bytes().ct_eq(self.login.as_bytes());
        let same_passcode = passcode.as_bytes().ct_eq(self.passcode.as_bytes());
        if bool::from(same_login & same_passcode) {
            Ok(())
        } else {
            Err("bad login or passcode".into())
        }
    }
}

fn main() -> ExitCode {
    let args = cli::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs written to a file stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Each connection is a descriptor: take all the system allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stomp-server failed");
            ExitCode::FAILURE
        }
    }
}

/// Resolves at SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

async fn run(args: cli::Args) -> std::io::Result<()> {
    let broker = match &args.login {
        None => Broker::new(args.broker_config()),
        Some((login, passcode)) => {
            let check = OneLogin {
                login: login.clone(),
                passcode: passcode.clone(),
            };
            Broker::with_authorizer(args.broker_config(), Box::new(check))
        }
    };
    let tcp = TcpListener::bind(args.tcp).await?;
    let ws = TcpListener::bind(args.ws).await?;
    // Scripts and tests read the bound addresses from this line (ports may be 0).
    println!(
        "stomp-server listening tcp={} ws=ws://{}{}",
        tcp.local_addr()?,
        ws.local_addr()?,
        args.ws_path
    );
    tracing::info!(tcp = %tcp.local_addr()?, ws = %ws.local_addr()?, path = %args.ws_path, "listening");

    let (hub_tx, hub_rx) = mpsc::channel(1024);
    // Every connection task holds a clone until it is done: shutdown waits for them all.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let settings = connection::Settings {
        hub: hub_tx.clone(),
        queue: hub::Hub::queue_size(args.max_outbound),
        send_timeout: args.send_timeout(),
        connect_timeout: args.connect_timeout(),
        connections: Arc::new(Semaphore::new(args.max_connections)),
        alive,
    };
    let listeners = [
        tokio::spawn(tcp::listen(tcp, settings.clone())),
        tokio::spawn(ws::listen(
            ws,
            args.ws_path.clone(),
            args.max_ws_message(),
            settings,
        )),
    ];
    let summary = std::time::Duration::from_secs(args.summary_interval);
    let hub = hub::Hub::new(broker, args.max_outbound_bytes, summary);
    let hub = tokio::spawn(hub.run(hub_rx));
    stop_signal().await?;
    let _ = hub_tx.send(hub::ToHub::Shutdown).await;
    let grace = std::time::Duration::from_secs(5);
    let finished = tokio::time::timeout(grace, async {
        // The hub ends once every connection has had its ERROR written and is gone...
        let _ = hub.await;
        for listener in &listeners {
            listener.abort();
        }
        for listener in listeners {
            let _ = listener.await;
        }
        // ...and the connection tasks end just after.
        all_done.recv().await
    });
    if finished.await.is_err() {
        tracing::warn!("connections still open after {grace:?}; exiting");
    }
    Ok(())
}
