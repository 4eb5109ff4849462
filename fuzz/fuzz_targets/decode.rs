//! Raw bytes into the Decoder, for each version: no panic; the same bytes split at points the
//! input chooses decode to the same items; every decoded frame, encoded again, decodes to an
//! equal frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stomp_codec::{Config, Encoder, Limits, Status, Version, parse};
use stomp_fuzz::{Seen, comparable, decode_in_pieces, without_content_length};

fuzz_target!(|data: &[u8]| {
    // The input's own octets choose the piece sizes, so captures seed the corpus as they are.
    let sizes: Vec<usize> = data.iter().take(64).map(|&b| usize::from(b % 17)).collect();
    for version in Version::ALL {
        let config = Config::new(version);
        let whole = decode_in_pieces(config, data, &[data.len()]);
        let expected = comparable(&whole);
        assert_eq!(
            comparable(&decode_in_pieces(config, data, &sizes)),
            expected
        );
        assert_eq!(comparable(&decode_in_pieces(config, data, &[1])), expected);
        for item in &whole.items {
            let Seen::Frame(frame) = item else { continue };
            let mut wire = Vec::new();
            // A decoded header may hold what this version cannot send back (a 1.1 value ending
            // in CR): the encoder says so instead of writing a broken frame.
            if Encoder::new(version).encode(frame, &mut wire).is_err() {
                continue;
            }
            // Re-escaping may lengthen a line (a raw colon in a value comes back as \c), so
            // limits are not what this checks.
            let unlimited = config.with_limits(Limits::UNLIMITED);
            let Ok(Status::Frame(again, used)) = parse(&wire, &unlimited) else {
                panic!("re-encoded frame does not decode: {frame:?}");
            };
            assert_eq!(used, wire.len());
            let again = stomp_codec::OutFrame::from(&again);
            assert_eq!(
                without_content_length(&again),
                without_content_length(frame)
            );
        }
    }
});
