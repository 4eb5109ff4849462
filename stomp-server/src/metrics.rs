//! `/metrics`: the server's figures in the Prometheus text format (version 0.0.4).

use std::fmt::Write;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use stomp_broker::FigureKind;

use crate::handle::Handle;
use crate::stats::Stats;

/// Most queues listed one by one, deepest first: a bound on the page whatever clients do.
const MAX_QUEUES: usize = 100;

pub(crate) async fn serve(State(handle): State<Handle>) -> Response {
    match handle.stats().await {
        Ok(stats) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            render(&stats),
        )
            .into_response(),
        Err(stopped) => (StatusCode::SERVICE_UNAVAILABLE, stopped.to_string()).into_response(),
    }
}

/// The figures as Prometheus text.
pub(crate) fn render(stats: &Stats) -> String {
    let b = &stats.broker;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    for figure in b.figures() {
        let kind = match figure.kind {
            FigureKind::Gauge => "gauge",
            FigureKind::Counter => "counter",
        };
        metric(figure.metric, kind, figure.help, figure.value);
    }
    if let Some(available) = stats.relay_available {
        let help =
            "Relay mode: 1 while the relay's connections to the other broker are up, else 0.";
        metric("stomp_relay_available", "gauge", help, u64::from(available));
    }
    let help = "WebSocket upgrades refused for their Origin.";
    metric(
        "stomp_origins_refused_total",
        "counter",
        help,
        stats.origins_refused,
    );
    let help = "Connections refused because their address had as many as it may.";
    metric(
        "stomp_peers_refused_total",
        "counter",
        help,
        stats.peers_refused,
    );
    let help = "Times a broker task was away from its loop longer than the stall timeout.";
    metric("stomp_shard_stalls_total", "counter", help, stats.stalls);
    let help = "Broker tasks away from their loop longer than the stall timeout now.";
    let stalled = stats.stalled_shards.len() as u64;
    metric("stomp_shards_stalled", "gauge", help, stalled);
    out.push_str("# HELP stomp_shard_stalled 1 for a shard whose broker task is stalled now.\n");
    out.push_str("# TYPE stomp_shard_stalled gauge\n");
    for shard in &stats.stalled_shards {
        let _ = writeln!(out, "stomp_shard_stalled{{shard=\"{shard}\"}} 1");
    }
    let mut queues: Vec<&(String, usize)> = stats.queues.iter().collect();
    queues.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.push_str("# HELP stomp_queue_depth Messages waiting in one queue (the deepest 100).\n");
    out.push_str("# TYPE stomp_queue_depth gauge\n");
    for (name, depth) in queues.into_iter().take(MAX_QUEUES) {
        let _ = writeln!(
            out,
            "stomp_queue_depth{{queue=\"{}\"}} {depth}",
            label(name)
        );
    }
    out
}

/// A label value with `\`, `"` and line feeds escaped, as the format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_escaped_and_listed_deepest_first() {
        let stats = Stats {
            queues: vec![("/queue/a".into(), 1), ("/queue/\"b\"\n".into(), 5)],
            ..Stats::default()
        };
        let text = render(&stats);
        let a = text
            .find("stomp_queue_depth{queue=\"/queue/a\"} 1")
            .unwrap();
        let b = text
            .find("stomp_queue_depth{queue=\"/queue/\\\"b\\\"\\n\"} 5")
            .unwrap();
        assert!(b < a, "{text}");
        assert!(text.contains("# TYPE stomp_deliveries_total counter\nstomp_deliveries_total 0\n"));
        assert!(
            !text.contains("stomp_relay_available"),
            "not without a relay"
        );
        let relayed = Stats {
            relay_available: Some(false),
            ..Stats::default()
        };
        assert!(render(&relayed).contains("\nstomp_relay_available 0\n"));
    }
}
