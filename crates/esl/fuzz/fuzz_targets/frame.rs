//! Any bytes: check, parse and decode must return, never panic, and agree with each other.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pairscale_esl::{Event, Frame, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_header_block: 4096,
        max_body: 1 << 16,
    };
    let mut rest = data;
    // Walk the input as a stream of frames, the way Connection does.
    for _ in 0..1024 {
        match Frame::check(rest, &limits) {
            Ok(Some(len)) => {
                assert!(len > 0 && len <= rest.len());
                let bytes = Bytes::copy_from_slice(&rest[..len]);
                let frame = Frame::parse(&bytes, &limits).expect("check accepted it");
                let _ = Event::from_frame(&frame);
                rest = &rest[len..];
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = Event::from_plain(data);
});
