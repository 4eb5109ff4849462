//! The example application tested as an application's own tests would be: clients in memory,
//! no socket, no port.

#[allow(dead_code)] // its main is for `cargo run --example`
#[path = "../examples/axum_app.rs"]
mod example;

use std::time::Duration;

use stomp_tokio::{AckMode, Client, SendFrame};

#[tokio::test]
async fn ann_says_hi_and_bob_sees_her_come_and_go() {
    let server = example::server();
    let connect = |token: &str| {
        Client::builder("memory")
            .connect_header("Authorization", format!("Bearer {token}"))
            .reply_to("/user/queue/replies")
            .connect_with(server.connect_local().unwrap())
    };
    let bob = connect("bob-token").await.unwrap();
    let mut presence = bob
        .subscribe("/topic/presence", AckMode::Auto)
        .await
        .unwrap();
    let mut lobby = bob.subscribe("/topic/lobby", AckMode::Auto).await.unwrap();

    let ann = connect("ann-token").await.unwrap();
    let hi = SendFrame::new("/app/rooms/lobby/say", r#"{"text":"hi"}"#);
    let said = ann.request(hi, Duration::from_secs(5)).await.unwrap();
    assert_eq!(said.body().as_ref(), b"\"said\"");
    assert_eq!(lobby.next().await.unwrap().body().as_ref(), b"ann: hi");
    ann.disconnect().await.unwrap();
    assert_eq!(
        presence.next().await.unwrap().body().as_ref(),
        b"ann is online"
    );
    assert_eq!(
        presence.next().await.unwrap().body().as_ref(),
        b"ann is offline"
    );

    assert!(
        connect("stolen").await.is_err(),
        "an unknown token is refused"
    );
}
