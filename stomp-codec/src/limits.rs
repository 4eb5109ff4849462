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
/// let limits = Limits::default().with_max_body(64 * 1024);
/// assert_eq!(limits.max_body(), 64 * 1024);
/// assert_eq!(limits.max_headers(), 128);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Most octets from the start of the command line to the end of the blank line that ends the
    /// headers.
    pub(crate) max_head_bytes: usize,
    /// Most header lines in one frame.
    pub(crate) max_headers: usize,
    /// Most octets in one header line, its EOL not counted.
    pub(crate) max_header_line: usize,
    /// Most body octets, NUL not counted. A larger `content-length` is refused as soon as it is
    /// read.
    pub(crate) max_body: usize,
}

impl Limits {
    /// Sets [`max_head_bytes`](Self::max_head_bytes).
    #[must_use]
    pub const fn with_max_head_bytes(mut self, max_head_bytes: usize) -> Self {
        self.max_head_bytes = max_head_bytes;
        self
    }

    /// Most octets from the start of the command line to the end of the blank line that ends the
    /// headers.
    pub const fn max_head_bytes(&self) -> usize {
        self.max_head_bytes
    }

    /// Sets [`max_headers`](Self::max_headers).
    #[must_use]
    pub const fn with_max_headers(mut self, max_headers: usize) -> Self {
        self.max_headers = max_headers;
        self
    }

    /// Most header lines in one frame.
    pub const fn max_headers(&self) -> usize {
        self.max_headers
    }

    /// Sets [`max_header_line`](Self::max_header_line).
    #[must_use]
    pub const fn with_max_header_line(mut self, max_header_line: usize) -> Self {
        self.max_header_line = max_header_line;
        self
    }

    /// Most octets in one header line, its EOL not counted.
    pub const fn max_header_line(&self) -> usize {
        self.max_header_line
    }

    /// Sets [`max_body`](Self::max_body).
    #[must_use]
    pub const fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// Most body octets, NUL not counted. A larger `content-length` is refused as soon as it is
    /// read.
    pub const fn max_body(&self) -> usize {
        self.max_body
    }

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
