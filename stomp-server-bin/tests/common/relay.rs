//! What the relay tests share.

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
