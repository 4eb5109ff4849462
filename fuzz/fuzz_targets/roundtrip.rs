//! Structured frames: encode for a version, decode, equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stomp_codec::{Config, EncodeError, Encoder, Limits, OutFrame, Status, Version, parse};
use stomp_fuzz::without_content_length;

fuzz_target!(|input: (OutFrame, Version, bool)| {
    let (frame, version, always) = input;
    let mut wire = Vec::new();
    match Encoder::new(version)
        .always_content_length(always)
        .encode(&frame, &mut wire)
    {
        Ok(()) => {}
        // Headers this version cannot carry, or an empty name: refused, nothing written.
        Err(EncodeError::Unrepresentable { .. } | EncodeError::EmptyHeaderName) => {
            assert!(wire.is_empty());
            return;
        }
        Err(e) => panic!("{e}"),
    }
    // Limits are not what this checks: a large frame must come back whole too.
    let config = Config::new(version).with_limits(Limits::UNLIMITED);
    let Ok(Status::Frame(decoded, used)) = parse(&wire, &config) else {
        panic!(
            "encoded frame does not decode: {frame:?} as {:?}",
            String::from_utf8_lossy(&wire)
        );
    };
    assert_eq!(used, wire.len());
    assert_eq!(
        without_content_length(&OutFrame::from(&decoded)),
        without_content_length(&frame)
    );
});
