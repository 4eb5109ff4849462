//! Encode a SEND and decode it again, as bytes would arrive from a socket:
//! `cargo run -p stomp-codec --example round_trip`.
use bytes::BytesMut;
use stomp_codec::{Command, Config, Decoder, Encoder, Item, OutFrame, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Header values are escaped for the version.
    let send = OutFrame::new(Command::Send)
        .with_header("destination", "/queue/orders")
        .with_body("hello");
    let mut wire = BytesMut::new();
    Encoder::new(Version::V1_2).encode(&send, &mut wire)?;

    // The decoder resumes where it stopped when a frame arrives in pieces.
    let mut decoder = Decoder::new(Config::new(Version::V1_2));
    let Some(Item::Frame(frame)) = decoder.decode(&mut wire)? else {
        return Err("incomplete frame".into());
    };
    assert_eq!(frame.command(), Command::Send);
    assert_eq!(
        frame.header("destination").as_deref(),
        Some("/queue/orders")
    );
    assert_eq!(&frame.body()[..], b"hello");
    println!("{:?} to {:?}", frame.command(), frame.header("destination"));
    Ok(())
}
