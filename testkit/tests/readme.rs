//! The README's Rust examples are the files the tests run, word for word: the axum
//! application (run by tests/axum.rs), and the tokio and `TcpStream` clients (run by
//! scripts/interop).

const README: &str = include_str!("../../README.md");

#[test]
fn the_readme_shows_the_examples_that_run() {
    for (path, example) in [
        (
            "stomp-server/examples/axum_app.rs",
            include_str!("../../stomp-server/examples/axum_app.rs"),
        ),
        (
            "stomp-tokio/examples/client.rs",
            include_str!("../../stomp-tokio/examples/client.rs"),
        ),
        (
            "stomp-session/examples/tcp_client.rs",
            include_str!("../../stomp-session/examples/tcp_client.rs"),
        ),
    ] {
        let block = format!("```rust,no_run\n{example}```");
        assert!(
            README.contains(&block),
            "README.md does not show {path} as it is"
        );
    }
}
