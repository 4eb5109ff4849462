//! `stomp-server`: the classic chat on the stomp-server library, over TCP (default
//! 127.0.0.1:61613) and WebSocket (default ws://127.0.0.1:15674/stomp), with its page at
//! http://127.0.0.1:15674/ and Prometheus figures at /metrics; with `--tls-cert` and
//! `--tls-key`, both in TLS (`wss://`, `https://`). SIGINT (Ctrl-C) and SIGTERM
//! close every client with an ERROR after writing out what was queued for it.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stomp_server::{App, ConnectRequest, Server, Tls, chat};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Whether a CONNECT carries the one login allowed (`user:passcode`), compared in constant
/// time; the session is then that user's.
fn one_login(
    login: String,
    passcode: String,
) -> impl Fn(&ConnectRequest) -> Result<Option<String>, String> + Send + Sync {
    move |request| {
        let given = request.login.as_deref().unwrap_or_default();
        let secret = request
            .passcode
            .as_ref()
            .map(|p| p.expose())
            .unwrap_or_default();
        let same_login = given.as_bytes().ct_eq(login.as_bytes());
        let same_passcode = secret.as_bytes().ct_eq(passcode.as_bytes());
        if bool::from(same_login & same_passcode) {
            Ok(Some(login.clone()))
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
    let mut app: App = chat::app();
    if let Some((login, passcode)) = args.login.clone() {
        app = app.authenticate(one_login(login, passcode));
    }
    // A certificate that cannot be read stops the start, before anything listens.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::from_pem_files(cert, key)?),
        _ => None,
    };
    // So does a relay address that does not parse.
    let relay = args
        .relay()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tcp = TcpListener::bind(args.tcp).await?;
    let ws = TcpListener::bind(args.ws).await?;
    let relay_note = match &relay {
        Some(_) => format!(" relay={}", args.relay.len()),
        None => String::new(),
    };
    let mut builder = Server::builder()
        .config(args.broker_config())
        .app(app)
        .max_connections(args.max_connections)
        .max_outbound_buffers(args.max_outbound)
        .send_timeout(args.send_timeout())
        .summary_interval(Duration::from_secs(args.summary_interval))
        .shards(args.shards);
    if let Some(relay) = relay {
        builder = builder.relay(relay);
    }
    let server = builder.start();
    // Scripts and tests read the bound addresses from this line (ports may be 0).
    let (ws_scheme, http_scheme, tls_note) = match tls {
        Some(_) => ("wss", "https", " tls=on"),
        None => ("ws", "http", ""),
    };
    println!(
        "stomp-server listening tcp={} ws={ws_scheme}://{}{} http={http_scheme}://{}/{tls_note}{relay_note}",
        tcp.local_addr()?,
        ws.local_addr()?,
        args.ws_path,
        ws.local_addr()?,
    );
    tracing::info!(tcp = %tcp.local_addr()?, ws = %ws.local_addr()?, path = %args.ws_path, tls = tls.is_some(), "listening");
    // One HTTP server: the chat page at /, STOMP over WebSocket, and the figures at /metrics.
    let router = chat::page(args.stompjs.clone())
        .route(&args.ws_path, server.endpoint())
        .route("/metrics", server.metrics());
    let listeners = match tls {
        Some(tls) => [
            tokio::spawn(server.serve_tls(tcp, tls.clone())),
            tokio::spawn(server.serve_https(ws, router, tls)),
        ],
        None => [
            tokio::spawn(server.serve_tcp(tcp)),
            tokio::spawn(server.serve_http(ws, router)),
        ],
    };
    stop_signal().await?;
    for listener in &listeners {
        listener.abort();
    }
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
