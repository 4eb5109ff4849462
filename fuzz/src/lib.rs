//! What the fuzz targets share is the workspace's test kit: streams decoded in chosen pieces,
//! outcomes compared, frames compared without the `content-length` that encoders own.

pub use stomp_testkit::pieces::{
    Follow, Outcome, Seen, comparable, cycled, feed, without_content_length,
};

use stomp_codec::Config;

/// Decodes `stream` fed in pieces of the given sizes, cycled (zero means one octet), keeping
/// the configured version, stopping at the first error.
pub fn decode_in_pieces(config: Config, stream: &[u8], sizes: &[usize]) -> Outcome {
    feed(
        config,
        Follow::Nothing,
        stream,
        &cycled(sizes, stream.len()),
    )
}
