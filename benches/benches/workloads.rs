//! The byte streams every implementation is measured on.

/// How many frames a stream workload holds.
pub const FRAMES: usize = 1000;

/// (a) A small MESSAGE as brokers send it: about 230 octets, seven headers, one value with
/// escapes, content-length.
pub fn small_message(n: usize) -> Vec<u8> {
    let body = format!("{{\"symbol\":\"ACME\",\"price\":101.25,\"qty\":{n:07},\"side\":\"buy\"}}");
    format!(
        "MESSAGE\nsubscription:sub-0\ndestination:/topic/prices.eu\n\
         message-id:ID\\cbroker-1\\c4711\\c{n:06}\ncontent-type:application/json\npriority:4\n\
         timestamp:1795500823285\ncontent-length:{}\n\n{body}\0\n",
        body.len()
    )
    .into_bytes()
}

/// (b) A MESSAGE with a body of `size` octets and content-length.
pub fn sized_message(size: usize) -> Vec<u8> {
    let mut frame = format!(
        "MESSAGE\nsubscription:sub-0\ndestination:/queue/bulk\nmessage-id:m-1\ncontent-length:{size}\n\n"
    )
    .into_bytes();
    frame.extend((0..size).map(|i| b'a' + (i % 26) as u8));
    frame.extend_from_slice(b"\0\n");
    frame
}

/// (c) One MESSAGE with a 1 MiB body and no content-length.
pub fn large_message() -> Vec<u8> {
    let mut frame =
        b"MESSAGE\nsubscription:sub-0\ndestination:/queue/big\nmessage-id:m-1\n\n".to_vec();
    frame.extend((0..1 << 20).map(|i| b'a' + (i % 26) as u8));
    frame.extend_from_slice(b"\0\n");
    frame
}

/// (d) Small MESSAGEs with CR LF line ends and heart-beat EOLs between them.
pub fn mixed_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for n in 0..FRAMES {
        let frame = String::from_utf8(small_message(n)).unwrap_or_default();
        let (head, body) = frame.split_once("\n\n").unwrap_or_default();
        stream.extend_from_slice(head.replace('\n', "\r\n").as_bytes());
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(body.as_bytes());
        stream.extend_from_slice(if n % 2 == 0 { b"\n" } else { b"\r\n\n" });
    }
    stream
}

/// `count` frames made by `frame`, one after the other.
pub fn stream_of(count: usize, frame: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    (0..count).flat_map(frame).collect()
}

/// The headers of (a), for encoding, without content-length (the encoders add it).
pub const SMALL_HEADERS: [(&str, &str); 6] = [
    ("subscription", "sub-0"),
    ("destination", "/topic/prices.eu"),
    ("message-id", "ID:broker-1:4711:000001"),
    ("content-type", "application/json"),
    ("priority", "4"),
    ("timestamp", "1795500823285"),
];
