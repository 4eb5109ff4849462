//! The closing table: criterion's estimates of every measured implementation, side by side,
//! with ratios, allocation counts and an SVG chart.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use crate::estimates::{criterion_dir, mean_ns};

/// One workload: the octets and frames (or messages) one iteration handles, and what each
/// implementation did with it.
pub struct Row {
    pub title: String,
    pub bytes: usize,
    pub frames: usize,
    /// Implementation name, and its criterion group or why it was not measured.
    pub entries: Vec<(String, Result<String, String>)>,
}

impl Row {
    pub fn new(title: &str, bytes: usize, frames: usize) -> Row {
        Row {
            title: title.to_owned(),
            bytes,
            frames,
            entries: Vec::new(),
        }
    }

    pub fn measured(&mut self, group: &str, name: &str) {
        self.entries.push((name.to_owned(), Ok(group.to_owned())));
    }

    pub fn failed(&mut self, name: &str, why: String) {
        self.entries.push((name.to_owned(), Err(why)));
    }

    /// (name, ns per iteration) of every measured entry.
    fn timings(&self) -> Vec<(String, f64)> {
        self.entries
            .iter()
            .filter_map(|(name, group)| {
                let group = group.as_ref().ok()?;
                mean_ns(group, name).map(|ns| (name.clone(), ns))
            })
            .collect()
    }
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
    /// (what, allocations per frame).
    pub allocations: Vec<(String, f64)>,
    /// Extra lines for the session workloads.
    pub notes: Vec<String>,
}

fn mib_per_s(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns * 1e9 / (1024.0 * 1024.0)
}

fn per_s(count: usize, ns: f64) -> f64 {
    count as f64 / ns * 1e9
}

fn human(rate: f64) -> String {
    match rate {
        r if r >= 1e9 => format!("{:.2} G", r / 1e9),
        r if r >= 1e6 => format!("{:.2} M", r / 1e6),
        r if r >= 1e3 => format!("{:.1} k", r / 1e3),
        r => format!("{r:.1} "),
    }
}

impl Table {
    pub fn print_and_save(&self) {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "| workload | implementation | MiB/s | frames/s | vs ours |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|");
        let mut chart = Vec::new();
        for row in &self.rows {
            let timings = row.timings();
            let best_ours = timings
                .iter()
                .filter(|(n, _)| n.starts_with("ours"))
                .map(|(_, ns)| *ns)
                .fold(f64::INFINITY, f64::min);
            for (name, ns) in &timings {
                let ratio = if name.starts_with("ours") {
                    String::from("-")
                } else {
                    format!("ours {:.1}x faster", ns / best_ours)
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.1} | {}/s | {} |",
                    row.title,
                    name,
                    mib_per_s(row.bytes, *ns),
                    human(per_s(row.frames, *ns)),
                    ratio
                );
                chart.push((row.title.clone(), name.clone(), mib_per_s(row.bytes, *ns)));
            }
            for (name, why) in row
                .entries
                .iter()
                .filter_map(|(n, r)| r.as_ref().err().map(|e| (n, e)))
            {
                let _ = writeln!(
                    md,
                    "| {} | {} | fails | {} | |",
                    row.title,
                    name,
                    why.replace('|', "/")
                );
            }
        }
        let _ = writeln!(md);
        for note in &self.notes {
            let _ = writeln!(md, "{note}");
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "| allocations (counting allocator, workload a) | per frame |"
        );
        let _ = writeln!(md, "|---|---:|");
        for (what, per_frame) in &self.allocations {
            let _ = writeln!(md, "| {what} | {per_frame:.3} |");
        }
        println!("\n{md}");
        let dir = criterion_dir();
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("summary.md"), &md);
        let _ = std::fs::write(dir.join("summary.svg"), svg(&chart));
        println!("table: {}", dir.join("summary.md").display());
        println!("chart: {}", dir.join("summary.svg").display());
    }
}

/// Notes the session workloads' results: messages per second, and cost per subscriber.
pub fn session_note(table: &mut Table, group: &str, name: &str, text: impl Fn(f64) -> String) {
    if let Some(ns) = mean_ns(group, name) {
        table.notes.push(text(ns));
    }
}

/// Allocations per frame on each of our paths, for workload (a).
pub fn allocation_counts(small: &[u8]) -> Vec<(String, f64)> {
    use stomp_codec::{Command, Encoder, Version};
    let frames = crate::workloads::FRAMES as f64;
    // Warm the paths once, so that one-time buffers are not counted.
    let _ = crate::peers::ours_borrowed(small, usize::MAX);
    let borrowed = crate::allocations(|| {
        let _ = crate::peers::ours_borrowed(small, usize::MAX);
    });
    let owned = crate::allocations(|| {
        let _ = crate::peers::ours_owned(small, 1460);
    });
    let encoder = Encoder::new(Version::V1_2);
    let body = Bytes::from_static(b"{\"symbol\":\"ACME\"}");
    let mut dst = BytesMut::with_capacity(4096);
    let encode = crate::allocations(|| {
        for _ in 0..crate::workloads::FRAMES {
            dst.clear();
            let _ = encoder.encode_parts(
                Command::Message,
                crate::workloads::SMALL_HEADERS,
                &body,
                &mut dst,
            );
        }
    });
    vec![
        ("borrowed parse".into(), borrowed as f64 / frames),
        (
            "owned Decoder, 1460-byte reads (buffer set-up included)".into(),
            owned as f64 / frames,
        ),
        (
            "Encoder into a reused buffer".into(),
            encode as f64 / frames,
        ),
    ]
}

/// A horizontal bar chart of MiB/s (log scale), one bar per implementation per workload.
fn svg(bars: &[(String, String, f64)]) -> String {
    let bar_h = 14.0;
    let label_w = 330.0;
    let plot_w = 520.0;
    let max = bars
        .iter()
        .map(|b| b.2)
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let mut y = 30.0;
    let mut body = String::new();
    let mut last_title = "";
    for (title, name, rate) in bars {
        if title != last_title {
            y += 10.0;
            let _ = writeln!(
                body,
                r#"<text x="4" y="{}" font-weight="bold">{}</text>"#,
                y + 10.0,
                escape(title)
            );
            y += bar_h + 2.0;
            last_title = title;
        }
        let width = (rate.max(1.0).log10() / max * plot_w).max(1.0);
        let colour = if name.starts_with("ours") {
            "#2b7bb9"
        } else {
            "#b0b0b0"
        };
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y + 11.0,
            escape(name)
        );
        let _ = writeln!(
            body,
            r#"<rect x="{label_w}" y="{y}" width="{width:.1}" height="{}" fill="{colour}"/>"#,
            bar_h - 2.0
        );
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}">{:.0} MiB/s</text>"#,
            label_w + width + 4.0,
            y + 11.0,
            rate
        );
        y += bar_h;
    }
    let height = y + 20.0;
    let width = label_w + plot_w + 110.0;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="4" y="16" font-size="13" font-weight="bold">Decoding and encoding throughput, MiB/s (log scale; blue: ours)</text>
{body}</svg>
"#
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
