//! Allocation counts, from a counting global allocator: none per frame on the borrowed path, at
//! most one per frame on the owned path, none when encoding into a reused buffer.
//!
//! Counts are per thread, so tests running in parallel do not disturb each other.
#![allow(unsafe_code)] // a global allocator cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use stomp_codec::{Command, Config, Decoder, Encoder, Item, OutFrame, Status, Version, parse};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A small MESSAGE as brokers send it: seven headers, one escaped value, content-length.
const MESSAGE: &[u8] = b"MESSAGE\nsubscription:sub-0\ndestination:/topic/prices.eu\n\
message-id:ID\\cbroker-1\\c4711\\c1\ncontent-type:application/json\npriority:4\n\
timestamp:1795500823285\ncontent-length:38\n\n{\"symbol\":\"ACME\",\"price\":101.25,\"q\":7}\0\n";

const FRAMES: usize = 1000;

#[test]
fn borrowed_parsing_allocates_nothing() {
    let stream = MESSAGE.repeat(FRAMES);
    let config = Config::new(Version::V1_2);
    let mut frames = 0;
    let count = allocations(|| {
        let mut input = &stream[..];
        while !input.is_empty() {
            match parse(input, &config) {
                Ok(Status::Frame(frame, used)) => {
                    assert_eq!(
                        frame.header("destination").as_deref(),
                        Some("/topic/prices.eu")
                    );
                    assert_eq!(frame.headers().iter().count(), 7);
                    assert!(frame.headers().find("message-id").is_some());
                    assert_eq!(frame.body().len(), 38);
                    frames += 1;
                    input = &input[used..];
                }
                Ok(Status::HeartBeat(n)) => input = &input[n..],
                other => panic!("{other:?}"),
            }
        }
    });
    assert_eq!(frames, FRAMES);
    assert_eq!(count, 0, "allocations on the borrowed path");
}

#[test]
fn owned_decoding_allocates_at_most_once_per_frame() {
    let stream = MESSAGE.repeat(FRAMES);
    let mut decoder = Decoder::new(Config::new(Version::V1_2));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut frames = 0;
    let count = allocations(|| {
        // As from a socket: 1460-byte reads into one reused buffer.
        for piece in stream.chunks(1460) {
            buf.extend_from_slice(piece);
            while let Some(item) = decoder.decode(&mut buf).unwrap() {
                if let Item::Frame(frame) = item {
                    assert_eq!(frame.command(), Command::Message);
                    assert_eq!(frame.body().len(), 38);
                    frames += 1;
                }
            }
        }
    });
    assert_eq!(frames, FRAMES);
    assert!(count <= FRAMES, "{count} allocations for {FRAMES} frames");
}

#[test]
fn encoding_into_a_reused_buffer_allocates_nothing() {
    let encoder = Encoder::new(Version::V1_2);
    let frame = OutFrame::new(Command::Message)
        .with_header("subscription", "sub-0")
        .with_header("destination", "/topic/prices.eu")
        .with_header("message-id", "ID:broker-1:4711:1")
        .with_body(&b"{\"symbol\":\"ACME\",\"price\":101.25,\"q\":7}\0"[..]);
    let headers = [
        ("subscription", "sub-0"),
        ("destination", "/topic/prices.eu"),
    ];
    let mut wire = Vec::with_capacity(4096);
    let count = allocations(|| {
        for _ in 0..FRAMES {
            wire.clear();
            encoder.encode(&frame, &mut wire).unwrap();
            encoder
                .encode_parts(Command::Message, headers, b"x", &mut wire)
                .unwrap();
        }
    });
    assert!(wire.starts_with(b"MESSAGE\nsubscription:sub-0\n"));
    assert_eq!(count, 0, "allocations while encoding");
}
