//! Decodes a STOMP byte stream from standard input and prints each item.
//!
//! ```text
//! cargo run -p stomp-codec --example stomp-dump -- 1.2 < stomp-codec/tests/fixtures/captures/rabbitmq-transaction.bin
//! ```
//!
//! The version argument (1.0, 1.1 or 1.2; default 1.2) sets the rules until a CONNECTED frame
//! names the negotiated version, as a client would.

use std::io::Read;
use std::process::ExitCode;

use bytes::BytesMut;
use stomp_codec::{Command, Config, Decoder, Item, Version};

fn main() -> ExitCode {
    let version = match std::env::args().nth(1).map(|v| v.parse::<Version>()) {
        None => Version::V1_2,
        Some(Ok(version)) => version,
        Some(Err(e)) => {
            eprintln!("stomp-dump: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut decoder = Decoder::new(Config::new(version));
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut stdin = std::io::stdin().lock();
    let (mut frames, mut heart_beats) = (0usize, 0usize);
    loop {
        let n = match stdin.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("stomp-dump: reading standard input: {e}");
                return ExitCode::FAILURE;
            }
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(Item::HeartBeat)) => heart_beats += 1,
                Ok(Some(Item::Frame(frame))) => {
                    frames += 1;
                    println!("{}", frame.command());
                    for header in frame.headers() {
                        println!("  {header:?}");
                    }
                    println!("  body: {} octets", frame.body().len());
                    if frame.command() == Command::Connected {
                        let negotiated = frame.header("version");
                        let negotiated = negotiated.as_deref().unwrap_or("1.0");
                        if let Ok(negotiated) = negotiated.parse() {
                            decoder.set_version(negotiated);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("stomp-dump: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!("{frames} frames, {heart_beats} heart-beats or trailing EOLs");
    if !buf.is_empty() {
        eprintln!(
            "stomp-dump: {} octets of an incomplete frame at the end",
            buf.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
