//! `stomp-server`: the classic chat on the stomp-server library, over TCP (default
//! 127.0.0.1:61613) and WebSocket (default ws://127.0.0.1:15674/stomp), with its page at
//! http://127.0.0.1:15674/, and Prometheus figures where `--metrics` says (a listener of their
//! own; `--public-metrics` puts them on the public HTTP port too); with `--tls-cert` and
//! `--tls-key`, both in TLS (`wss://`, `https://`). SIGINT (Ctrl-C) and SIGTERM
//! close every client with an ERROR after writing out what was queued for it, within
//! `--shutdown-grace`; a second signal ends the process at once.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stomp_chat as chat;
#[cfg(feature = "test-hooks")]
use stomp_server::Inbound;
use stomp_server::{Admit, App, Login, Refused, Server, Tls};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing_subscriber::EnvFilter;

/// Whether a CONNECT carries the one login allowed (`user:passcode`), compared in constant
/// time; the session is then that user's.
fn one_login<S>(
    login: String,
    passcode: String,
) -> impl Fn(Login<S>) -> std::future::Ready<Result<Admit, Refused>> + Send + Sync {
    move |request| {
        let given = request.login().unwrap_or_default();
        let secret = request.passcode().unwrap_or_default();
        let same_login = given.as_bytes().ct_eq(login.as_bytes());
        let same_passcode = secret.as_bytes().ct_eq(passcode.as_bytes());
        let verdict = if bool::from(same_login & same_passcode) {
            Ok(Admit::user(login.clone()))
        } else {
            Err("bad login or passcode".into())
        };
        std::future::ready(verdict)
    }
}

/// A test hook (feature `test-hooks`, for this project's own tests only): a SEND or
/// SUBSCRIBE of user `login` holds its broker task for good, as an interceptor stuck on a lock
/// would.
#[cfg(feature = "test-hooks")]
fn stall_on<S>(login: String) -> impl Fn(&Inbound<'_, S>) -> Result<(), Refused> + Send + Sync {
    move |inbound| {
        if inbound.user == Some(login.as_str()) {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Ok(())
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
    let grace = Duration::from_secs(args.shutdown_grace);
    let outcome = watch_signals(grace).and_then(|stop| runtime.block_on(run(args, stop)));
    // A broker task stuck in a hook never ends: its thread is not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    // Built for measuring: where what clients sent spent its time, for scripts/load. Only
    // after a run that served: a start refused (a bad address) measured nothing, and its
    // stdout stays empty. Written, not printed: a reader that has closed its end of stdout
    // (as one that read only the listening line) must not turn a clean exit into a panic.
    #[cfg(feature = "latency-budget")]
    if outcome.is_ok() {
        use std::io::Write;
        let budget = stomp_server::latency_budget();
        let _ = writeln!(std::io::stdout(), "latency budget\n{budget}");
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stomp-server failed");
            ExitCode::FAILURE
        }
    }
}

/// Watches for SIGINT (Ctrl-C) and SIGTERM on a thread of its own, with its own runtime: a
/// broker task stuck in a hook may hold the main runtime's workers, which also drive its
/// signals. The first signal resolves the receiver, for a graceful shutdown; should the
/// process still be running `grace` (and a second) later, or at a second signal, it ends at
/// once.
fn watch_signals(grace: Duration) -> std::io::Result<oneshot::Receiver<()>> {
    let (stop, stopped) = oneshot::channel();
    let (ready, listening) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let watch = move || {
        runtime.block_on(async move {
            let mut signals = match Signals::new() {
                Ok(signals) => {
                    let _ = ready.send(Ok(()));
                    signals
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            signals.next().await;
            let _ = stop.send(());
            let limit = grace + Duration::from_secs(1);
            tokio::select! {
                () = signals.next() => tracing::warn!("second signal: stopping now"),
                () = tokio::time::sleep(limit) => {
                    tracing::error!("still running {limit:?} after the signal: stopping now");
                }
            }
            std::process::exit(1);
        });
    };
    std::thread::Builder::new()
        .name("stomp-signals".into())
        .spawn(watch)?;
    listening
        .recv()
        .map_err(|_| std::io::Error::other("the signal thread ended"))??;
    Ok(stopped)
}

/// SIGINT and SIGTERM, as one stream.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(args: cli::Args, stop: oneshot::Receiver<()>) -> std::io::Result<()> {
    let mut app: App<chat::Rooms> = chat::app();
    if let Some((login, passcode)) = args.login.clone() {
        app = app.authenticate(one_login(login, passcode));
    }
    #[cfg(feature = "test-hooks")]
    if let Ok(login) = std::env::var("STOMP_SERVER_STALL_LOGIN") {
        app = app.intercept(stall_on(login));
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
    // As RabbitMQ lets `guest` in from loopback only: an open server beyond this machine says so.
    if let Some(address) =
        open_beyond_loopback(args.login.is_some(), &[tcp.local_addr()?, ws.local_addr()?])
    {
        tracing::warn!(
            %address,
            "no authentication: any login is accepted from anywhere that reaches {address}; \
             set one with --login user:passcode, or listen on 127.0.0.1"
        );
    }
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
        .shards(args.shards)
        .allowed_origins(args.allowed_origins())
        .max_connections_per_peer(args.max_connections_per_peer)
        .stall_timeout(Duration::from_secs(args.stall_timeout));
    if let Some(relay) = relay {
        builder = builder.relay(relay);
    }
    if let Some(dir) = &args.data_dir {
        builder = builder
            .data_dir(dir)
            .max_journal_bytes(args.max_journal_bytes);
    }
    let server = builder.try_start()?;
    let metrics = match args.metrics {
        Some(address) => Some(TcpListener::bind(address).await?),
        None => None,
    };
    let metrics_note = match &metrics {
        Some(listener) => format!(" metrics=http://{}/metrics", listener.local_addr()?),
        None => String::new(),
    };
    // Scripts and tests read the bound addresses from this line (ports may be 0).
    let (ws_scheme, http_scheme, tls_note) = match tls {
        Some(_) => ("wss", "https", " tls=on"),
        None => ("ws", "http", ""),
    };
    println!(
        "stomp-server listening tcp={} ws={ws_scheme}://{}{} http={http_scheme}://{}/{tls_note}{relay_note}{metrics_note}",
        tcp.local_addr()?,
        ws.local_addr()?,
        args.ws_path,
        ws.local_addr()?,
    );
    tracing::info!(tcp = %tcp.local_addr()?, ws = %ws.local_addr()?, path = %args.ws_path, tls = tls.is_some(), "listening");
    // One public HTTP server: the chat page at /, and STOMP over WebSocket. The figures name
    // queues and users' traffic: on a listener of their own, or here only when asked.
    let mut router = chat::page(args.stompjs.clone()).route(&args.ws_path, server.endpoint());
    if args.public_metrics {
        router = router.route("/metrics", server.metrics());
    }
    if let Some(listener) = metrics {
        tokio::spawn(server.serve_metrics(listener));
    }
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
    let _ = stop.await;
    for listener in &listeners {
        listener.abort();
    }
    server
        .shutdown(Duration::from_secs(args.shutdown_grace))
        .await;
    Ok(())
}

/// The first address reachable from beyond this machine, when no login is required.
fn open_beyond_loopback(
    login: bool,
    addresses: &[std::net::SocketAddr],
) -> Option<std::net::SocketAddr> {
    if login {
        return None;
    }
    addresses.iter().copied().find(|a| !a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::open_beyond_loopback;

    #[test]
    fn an_open_server_beyond_loopback_is_named() {
        let loopback = [
            "127.0.0.1:61613".parse().unwrap(),
            "[::1]:15674".parse().unwrap(),
        ];
        let everywhere = "0.0.0.0:61613".parse().unwrap();
        assert_eq!(open_beyond_loopback(false, &loopback), None);
        assert_eq!(
            open_beyond_loopback(false, &[loopback[0], everywhere]),
            Some(everywhere)
        );
        assert_eq!(
            open_beyond_loopback(true, &[everywhere]),
            None,
            "a login is required"
        );
    }
}
