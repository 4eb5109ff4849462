//! Size limits that the decoder enforces while a frame is still arriving.

/// Limits on incoming frames. Each is checked as bytes arrive, before the frame's NUL, so a peer
/// cannot make the receiver buffer without end (1.2 "Size Limits").
///
/// The defaults suit brokers and clients alike:
///
/// | limit | default |
/// |---|---|
/// | [`max_head_bytes`](Limits::max_head_bytes): command line, header lines and the blank line | 64 KiB |
/// | [`max_headers`](Limits::max_headers): header lines in one frame | 128 |
/// | [`max_header_line`](Limits::max_header_line): one header line, without its EOL | 16 KiB |
/// | [`max_body`](Limits::max_body): body octets | 16 MiB |
///
/// ```
/// use stomp_codec::Limits;
///
/// let limits = Limits { max_body: 64 * 1024, ..Limits::default() };
/// assert_eq!(limits.max_headers, 128);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Most octets from the start of the command line to the end of the blank line that ends the
    /// headers.
    pub max_head_bytes: usize,
    /// Most header lines in one frame.
    pub max_headers: usize,
    /// Most octets in one header line, its EOL not counted.
    pub max_header_line: usize,
    /// Most body octets, NUL not counted. A larger `content-length` is refused as soon as it is
    /// read.
    pub max_body: usize,
}

impl Limits {
    /// No limits at all: for trusted peers and tests only.
    pub const UNLIMITED: Limits = Limits {
        max_head_bytes: usize::MAX,
        max_headers: usize::MAX,
        max_header_line: usize::MAX,
        max_body: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 128,
            max_header_line: 16 * 1024,
            max_body: 16 * 1024 * 1024,
        }
    }
}
