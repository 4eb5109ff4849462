//! Criterion benchmarks of stomp-codec and stomp-session beside the published STOMP crates, on
//! the same bytes in the same run. The run ends with a table of every workload (ours, each
//! peer, and the ratio), allocation counts, and an SVG chart of the table.
//!
//! `cargo bench -p stomp-benches` runs it; `target/criterion/summary.md` and `summary.svg` hold
//! the table and the chart afterwards.
#![allow(unsafe_code)] // the counting global allocator
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::print_stdout,
    clippy::unwrap_used
)]

mod estimates;
mod peers;
mod report;
mod sessions;
mod workloads;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use peers::{DecodeFn, EncodeFn};
use report::{Row, Table};
use workloads::FRAMES;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; counting is an atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made while `f` runs (the benchmark is single-threaded).
pub fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    f();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

const WHOLE: usize = usize::MAX;

/// A decoding workload: a stream, how many frames it holds, and how it is delivered.
struct Workload<'a> {
    group: &'a str,
    title: &'a str,
    stream: &'a [u8],
    frames: usize,
    /// Octets per read, or `WHOLE`.
    piece: usize,
    /// stomp-parser takes whole frames only: it joins the workloads delivered whole.
    with_stomp_parser: bool,
}

/// Benchmarks one decoding workload through every implementation that handles it correctly.
fn decode_workload(c: &mut Criterion, table: &mut Table, workload: Workload<'_>) {
    let Workload {
        group,
        title,
        stream,
        frames,
        piece,
        with_stomp_parser,
    } = workload;
    let mut candidates: Vec<(&str, DecodeFn)> = vec![
        ("ours (borrowed parse)", peers::ours_borrowed),
        ("ours (owned Decoder)", peers::ours_owned),
        ("async-stomp", peers::async_stomp),
        ("iridium-stomp StompCodec", peers::iridium_codec),
        ("iridium-stomp parse_frame_slice", peers::iridium_slice),
        ("tokio-stomp-2", peers::tokio_stomp_2),
    ];
    if piece != WHOLE {
        // The slice parsers take whole input only.
        candidates.retain(|(name, _)| !name.contains("borrowed") && !name.contains("slice"));
    }
    let mut row = Row::new(title, stream.len(), frames);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for (name, decode) in candidates {
        // Only what decodes the workload correctly is timed.
        match decode(stream, piece) {
            Ok(n) if n == frames => {
                g.bench_function(estimates::slug(name), |b| b.iter(|| decode(stream, piece)));
                row.measured(group, name);
            }
            Ok(n) => row.failed(name, format!("{n} frames of {frames}")),
            Err(e) => row.failed(name, first_line(&e)),
        }
    }
    if with_stomp_parser {
        let whole_frames = peers::frames_of(stream);
        let name = "stomp-parser";
        match peers::stomp_parser(&whole_frames) {
            Ok(n) if n == frames => {
                g.bench_function(estimates::slug(name), |b| {
                    b.iter(|| peers::stomp_parser(&whole_frames))
                });
                row.measured(group, name);
            }
            Ok(n) => row.failed(name, format!("{n} frames of {frames}")),
            Err(e) => row.failed(name, first_line(&e)),
        }
    }
    g.finish();
    table.rows.push(row);
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(60).collect()
}

fn encode_workload(c: &mut Criterion, table: &mut Table, group: &str, title: &str, body: Bytes) {
    let headers = workloads::SMALL_HEADERS;
    let mut probe = BytesMut::new();
    peers::encode_ours(&headers, &body, &mut probe).unwrap();
    let size = probe.len();
    let mut row = Row::new(title, size * FRAMES, FRAMES);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes((size * FRAMES) as u64));
    let candidates: [(&str, EncodeFn); 4] = [
        ("ours (Encoder, reused buffer)", peers::encode_ours),
        ("async-stomp", peers::encode_async_stomp),
        ("iridium-stomp StompCodec", peers::encode_iridium),
        ("tokio-stomp-2", peers::encode_tokio_stomp_2),
    ];
    for (name, encode) in candidates {
        let mut dst = BytesMut::with_capacity(size * 2);
        if let Err(e) = encode(&headers, &body, &mut dst) {
            row.failed(name, first_line(&e));
            continue;
        }
        g.bench_function(estimates::slug(name), |b| {
            b.iter(|| {
                for _ in 0..FRAMES {
                    dst.clear();
                    encode(&headers, &body, &mut dst).unwrap();
                }
            })
        });
        row.measured(group, name);
    }
    g.finish();
    table.rows.push(row);
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut table = Table::default();

    let small = workloads::stream_of(FRAMES, workloads::small_message);
    let kib = workloads::stream_of(FRAMES, |_| workloads::sized_message(1024));
    let big = workloads::stream_of(100, |_| workloads::sized_message(64 * 1024));
    let huge = workloads::large_message();
    let mixed = workloads::mixed_stream();
    let decoding = [
        (
            "a_small",
            "(a) 1000 small MESSAGEs (~230 B, 7 headers)",
            &small,
            FRAMES,
            WHOLE,
        ),
        (
            "b_1kib",
            "(b) 1000 MESSAGEs, 1 KiB bodies",
            &kib,
            FRAMES,
            WHOLE,
        ),
        (
            "b_64kib",
            "(b) 100 MESSAGEs, 64 KiB bodies",
            &big,
            100,
            WHOLE,
        ),
        (
            "c_1mib_whole",
            "(c) 1 MiB body, no content-length, whole",
            &huge,
            1,
            WHOLE,
        ),
        (
            "c_1mib_1460",
            "(c) 1 MiB body, no content-length, 1460 B pieces",
            &huge,
            1,
            1460,
        ),
        (
            "d_mixed",
            "(d) 1000 MESSAGEs, CR LF, heart-beats between",
            &mixed,
            FRAMES,
            WHOLE,
        ),
    ];
    for (group, title, stream, frames, piece) in decoding {
        let workload = Workload {
            group,
            title,
            stream,
            frames,
            piece,
            with_stomp_parser: piece == WHOLE,
        };
        decode_workload(&mut c, &mut table, workload);
    }
    let json = Bytes::from_static(
        b"{\"symbol\":\"ACME\",\"price\":101.25,\"qty\":0000001,\"side\":\"buy\"}",
    );
    encode_workload(
        &mut c,
        &mut table,
        "e_encode_small",
        "(e) encode 1000 small frames",
        json,
    );
    encode_workload(
        &mut c,
        &mut table,
        "e_encode_1kib",
        "(e) encode 1000 frames, 1 KiB bodies",
        Bytes::from(vec![b'x'; 1024]),
    );
    sessions::end_to_end(&mut c, &mut table);
    sessions::fan_out(&mut c, &mut table);

    c.final_summary();
    table.allocations = report::allocation_counts(&small);
    table.print_and_save();
}
