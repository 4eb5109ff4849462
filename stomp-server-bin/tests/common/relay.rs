//! What the relay tests share.

use std::process::Command;
use std::time::{Duration, Instant};

use stomp_server::Server;

/// Waits (at most `wait`) until every broker connection of `server` is up; how long that took.
pub async fn available(server: &Server, wait: Duration) -> Duration {
    let started = Instant::now();
    let handle = server.handle();
    let up = async {
        while handle.relay_available().await.unwrap() != Some(true) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(wait, up)
        .await
        .expect("the relay did not reach the broker");
    started.elapsed()
}

/// Runs `rabbitmqctl` (installed with RabbitMQ by `scripts/brokers.sh`); its output.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .env("HOME", "/var/lib/rabbitmq")
        .output()
        .expect("rabbitmqctl must be installed (scripts/brokers.sh installs it)");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The queues RabbitMQ holds, by name.
pub fn queues() -> Vec<String> {
    rabbitmqctl(&["list_queues", "--quiet", "--no-table-headers", "name"])
        .lines()
        .map(str::to_owned)
        .collect()
}
