//! The `stomp-server` binary end to end over TCP, with the blocking client: messaging, the chat
//! demo, a misbehaving client closed with an ERROR while the others go on, and Ctrl-C.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;
use stomp_blocking::Client;
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, CloseReason, Message, SendFrame,
};

const WAIT: Duration = Duration::from_secs(10);

trait Clients {
    fn client(&self, login: &str) -> Client;
    /// Ctrl-C, and the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus;
}

impl Clients for Server {
    fn client(&self, login: &str) -> Client {
        let config = ClientConfig::new("/").with_login(login, "pw");
        Client::connect(self.tcp.as_str(), config).unwrap()
    }

    fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

fn now() -> Instant {
    Instant::now()
}

fn next_message(client: &mut Client) -> Message {
    loop {
        match client.next_event(Some(WAIT)).unwrap() {
            Some(ClientEvent::Message(message)) => return message,
            Some(ClientEvent::Receipt { .. }) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[test]
fn messaging_chat_misbehaviour_and_shutdown() {
    let mut server = Server::start(&[]);
    let mut alice = server.client("alice");
    let mut bob = server.client("bob");

    // Topics: subscribe, send, receive.
    alice
        .session()
        .subscribe(now(), "/topic/news", AckMode::Auto, AskReceipt::No)
        .unwrap();
    alice
        .session()
        .subscribe(now(), "/chat/lobby", AckMode::Auto, AskReceipt::No)
        .unwrap();
    alice
        .session()
        .subscribe(
            now(),
            "/user/queue/responses",
            AckMode::Auto,
            AskReceipt::Yes,
        )
        .unwrap();
    alice.flush().unwrap();
    // A receipt proves the subscriptions are in place before Bob sends.
    let receipt = alice
        .session()
        .send(now(), SendFrame::new("/topic/other", "x").with_receipt())
        .unwrap();
    loop {
        if let Some(ClientEvent::Receipt { receipt: r, .. }) = alice.next_event(Some(WAIT)).unwrap()
        {
            if Some(r) == receipt {
                break;
            }
        }
    }
    bob.session()
        .send(now(), SendFrame::new("/topic/news", "hello"))
        .unwrap();
    bob.flush().unwrap();
    assert_eq!(&next_message(&mut alice).body()[..], b"hello");

    // The chat application: a RESPONSE to the sender, a MESSAGE to the room, one tid.
    let request =
        r#"{"tid":42,"method":"/chat/sendMessage","params":{"roomId":"lobby","content":"hi all"}}"#;
    alice
        .session()
        .send(now(), SendFrame::new("/app/chat-api", request))
        .unwrap();
    let mut bodies: Vec<String> = (0..2)
        .map(|_| String::from_utf8_lossy(next_message(&mut alice).body()).into_owned())
        .collect();
    bodies.sort();
    assert!(
        bodies[0].contains(r#""type":"MESSAGE""#) && bodies[0].contains(r#""tid":42"#),
        "{bodies:?}"
    );
    assert!(
        bodies[1].contains(r#""type":"RESPONSE""#) && bodies[1].contains(r#""tid":42"#),
        "{bodies:?}"
    );

    // A client that sends a malformed frame gets an ERROR and is closed...
    let mut raw = TcpStream::connect(server.tcp.as_str()).unwrap();
    raw.write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0send\ndestination:/q\n\n\0")
        .unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("ERROR\nmessage:unknown command"),
        "{answer}"
    );
    // ...while the server goes on serving the others.
    bob.session()
        .send(now(), SendFrame::new("/topic/news", "still here"))
        .unwrap();
    bob.flush().unwrap();
    assert_eq!(&next_message(&mut alice).body()[..], b"still here");

    // Ctrl-C: every client gets an ERROR and a close; the server exits cleanly.
    let status = server.interrupt();
    assert!(status.success(), "{status:?}");
    let events = alice.run_for(Duration::from_secs(2)).unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ClientEvent::Closed { reason: CloseReason::ErrorFrame(Some(m)), .. } if m == "server shutting down")),
        "{events:?}"
    );
}

#[test]
fn a_login_check_refuses_others() {
    let server = Server::start(&["--login", "admin:s3cret"]);
    let refused = Client::connect(
        server.tcp.as_str(),
        ClientConfig::new("/").with_login("eve", "guess"),
    );
    assert!(matches!(
        refused,
        Err(stomp_blocking::ConnectError::Closed(CloseReason::ErrorFrame(Some(ref m)))) if m == "bad login or passcode"
    ));
    let accepted = Client::connect(
        server.tcp.as_str(),
        ClientConfig::new("/").with_login("admin", "s3cret"),
    );
    assert!(accepted.is_ok());
}

#[test]
fn a_slow_consumer_is_closed_when_its_queue_is_full() {
    let server = Server::start(&["--max-outbound", "8"]);
    // A subscriber that never reads.
    let mut stalled = TcpStream::connect(server.tcp.as_str()).unwrap();
    stalled
        .write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0SUBSCRIBE\nid:0\ndestination:/topic/flood\n\n\0")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut producer = server.client("producer");
    let body = vec![b'x'; 64 * 1024];
    for _ in 0..2000 {
        producer
            .session()
            .send(now(), SendFrame::new("/topic/flood", body.clone()))
            .unwrap();
    }
    producer.flush().unwrap();
    // The producer is not held back, and the server keeps answering it.
    let receipt = producer
        .session()
        .send(now(), SendFrame::new("/topic/other", "x").with_receipt())
        .unwrap();
    let mut answered = false;
    while let Some(event) = producer.next_event(Some(WAIT)).unwrap() {
        if matches!(&event, ClientEvent::Receipt { receipt: r, .. } if Some(r) == receipt.as_ref())
        {
            answered = true;
            break;
        }
    }
    assert!(answered);
    // The stalled subscriber, read at last, ends with the ERROR that closed it.
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    let mut all = Vec::new();
    let _ = stalled.read_to_end(&mut all);
    let tail = String::from_utf8_lossy(&all[all.len().saturating_sub(300)..]).into_owned();
    assert!(
        tail.contains("ERROR\nmessage:too slow, outbound queue full"),
        "{tail}"
    );
}

#[test]
fn connections_are_summarised_at_info_and_detailed_only_at_debug() {
    let mut server = Server::start_logged(&[], &["--summary-interval", "1"]);
    let tcp = server.tcp.clone();
    let client = Client::connect(tcp.as_str(), ClientConfig::new("/").with_login("a", "b"));
    let (reason, _) = client.unwrap().disconnect(WAIT).unwrap();
    assert_eq!(reason, Some(CloseReason::Disconnected));
    std::thread::sleep(Duration::from_millis(1500));
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    server.child.wait().unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("summary") && l.contains("opened=1") && l.contains("closed=1")),
        "{log}"
    );
    assert!(!log.contains("connection opened"), "{log}");
    // Written to a pipe, the log has no colour codes.
    assert!(!log.contains('\u{1b}'), "{log}");
}
