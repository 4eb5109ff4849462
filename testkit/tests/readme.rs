//! The Rust examples of the README and of docs/client.md are the files the tests run, word
//! for word: the axum application (run by stomp-server's tests/axum.rs and its test with
//! in-memory clients, tests/app_client.rs), the tokio and
//! `TcpStream` clients (run by scripts/interop), and the codec's round trip (run as a doctest
//! of the README by stomp-tokio).

const README: &str = include_str!("../../README.md");
const CLIENTS: &str = include_str!("../../docs/client.md");

#[test]
fn the_readme_and_the_docs_show_the_examples_that_run() {
    for (page, text, fence, path, example) in [
        (
            "README.md",
            README,
            "rust,no_run",
            "stomp-server/examples/axum_app.rs",
            include_str!("../../stomp-server/examples/axum_app.rs"),
        ),
        (
            "README.md",
            README,
            // A test file, not a doctest: it is run where it lives, and `--include-ignored`
            // would compile an ignored block.
            "text",
            "stomp-server/tests/app_client.rs",
            include_str!("../../stomp-server/tests/app_client.rs"),
        ),
        (
            "README.md",
            README,
            "rust,no_run",
            "stomp-tokio/examples/client.rs",
            include_str!("../../stomp-tokio/examples/client.rs"),
        ),
        (
            "README.md",
            README,
            "rust",
            "stomp-codec/examples/round_trip.rs",
            include_str!("../../stomp-codec/examples/round_trip.rs"),
        ),
        (
            "docs/client.md",
            CLIENTS,
            "rust,no_run",
            "stomp-session/examples/tcp_client.rs",
            include_str!("../../stomp-session/examples/tcp_client.rs"),
        ),
    ] {
        let block = format!("```{fence}\n{example}```");
        assert!(
            text.contains(&block),
            "{page} does not show {path} as it is"
        );
    }
}
