//! `stomp-server`: a STOMP broker over TCP (default 127.0.0.1:61613) and WebSocket (default
//! ws://127.0.0.1:15674/stomp), built on the sans-IO stomp-session and stomp-broker crates.
//!
//! Both transports drive the same sessions: one task per connection feeds received bytes to
//! the broker task and writes what it hands back, with one timer per connection re-armed from
//! the session's next deadline. Ctrl-C closes every client with an ERROR after writing out
//! what was queued for it.

mod chat;
mod cli;
mod connection;
mod hub;
mod tcp;
mod ws;

use std::process::ExitCode;

use clap::Parser;
use stomp_broker::{Authorizer, Broker};
use stomp_session::ConnectRequest;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

/// Accepts one login, given as `user:passcode`.
struct OneLogin {
    login: String,
    passcode: String,
}

impl Authorizer for OneLogin {
    fn connect(&self, request: &ConnectRequest) -> Result<(), String> {
        let passcode = request.passcode.as_ref().map(|p| p.expose());
        if request.login.as_deref() == Some(self.login.as_str())
            && passcode == Some(self.passcode.as_str())
        {
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
        .init();
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

async fn run(args: cli::Args) -> std::io::Result<()> {
    let broker = match &args.login {
        None => Broker::new(args.broker_config()),
        Some(pair) => {
            let (login, passcode) = pair.split_once(':').unwrap_or((pair, ""));
            let check = OneLogin {
                login: login.to_owned(),
                passcode: passcode.to_owned(),
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
    let queue = hub::Hub::queue_size(args.max_outbound);
    let listeners = [
        tokio::spawn(tcp::listen(tcp, hub_tx.clone(), queue, alive.clone())),
        tokio::spawn(ws::listen(
            ws,
            args.ws_path.clone(),
            hub_tx.clone(),
            queue,
            alive,
        )),
    ];
    let hub = tokio::spawn(hub::Hub::new(broker).run(hub_rx));
    tokio::signal::ctrl_c().await?;
    let _ = hub_tx.send(hub::ToHub::Shutdown).await;
    let grace = std::time::Duration::from_secs(5);
    let finished = tokio::time::timeout(grace, async {
        // The hub ends once it has handed every connection its ERROR and its close...
        let _ = hub.await;
        for listener in &listeners {
            listener.abort();
        }
        for listener in listeners {
            let _ = listener.await;
        }
        // ...and the connections end once that is written.
        all_done.recv().await
    });
    if finished.await.is_err() {
        tracing::warn!("connections still open after {grace:?}; exiting");
    }
    Ok(())
}
