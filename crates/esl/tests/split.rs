//! Property tests: a byte stream cut into reads at any points parses to the same frames, and
//! no input, however malformed, makes the parser or the connection panic. (The bounded
//! random-input test here always runs; the cargo-fuzz target in `fuzz/` goes further where a
//! nightly toolchain is available.)
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{capture, frames_via_connection, server_bytes};
use pairscale_esl::{Event, Frame, Headers, Limits};
use proptest::prelude::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

const CAPTURES: [&str; 5] = [
    "01_idle_basic",
    "02_loaded_pause_inbound",
    "05_pause_checks",
    "07_misc_and_exit",
    "08_bad_password",
];

/// Everything FreeSWITCH sent in all the captures, back to back.
fn all_server_bytes() -> Vec<u8> {
    CAPTURES
        .iter()
        .flat_map(|n| server_bytes(&capture(n)))
        .collect()
}

/// How many frames FreeSWITCH sent, as the capture splitter counts them.
fn captured_frame_count() -> usize {
    CAPTURES
        .iter()
        .map(|n| {
            common::segments(&capture(n))
                .iter()
                .filter(|s| matches!(s, common::Segment::Recv(_)))
                .count()
        })
        .sum()
}

fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,20}".prop_filter("Content-Length is set by encode", |n| {
        !n.eq_ignore_ascii_case("content-length")
    })
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        proptest::collection::vec((header_name(), "[ -~]{0,40}"), 1..6),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    )
        .prop_map(|(hs, body)| Frame {
            headers: hs
                .into_iter()
                // Leading spaces of a value are not part of it on the wire.
                .map(|(k, v)| (k, v.trim_start_matches(' ').to_string()))
                .collect::<Headers>(),
            body: body.map(Bytes::from),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn captured_stream_split_anywhere_parses_the_same(
        cuts in proptest::collection::vec(0usize..20_000, 0..40)
    ) {
        let bytes = all_server_bytes();
        let rt = rt();
        let whole = rt.block_on(frames_via_connection(&bytes, &[])).unwrap();
        let split = rt.block_on(frames_via_connection(&bytes, &cuts)).unwrap();
        prop_assert_eq!(whole.len(), captured_frame_count());
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn generated_frames_split_anywhere_round_trip(
        frames in proptest::collection::vec(frame(), 1..6),
        cuts in proptest::collection::vec(0usize..4_000, 0..30),
    ) {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let got = rt().block_on(frames_via_connection(&bytes, &cuts)).unwrap();
        prop_assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            prop_assert_eq!(&g.body, &f.body);
            for (k, v) in f.headers.iter() {
                prop_assert_eq!(g.headers.get(k), f.headers.get(k), "header {} ({})", k, v);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&data);
    }

    #[test]
    fn mutated_captures_never_panic(
        flips in proptest::collection::vec((0usize..3_000, any::<u8>()), 1..12),
        cuts in proptest::collection::vec(0usize..3_000, 0..10),
    ) {
        let mut bytes = server_bytes(&capture("01_idle_basic"));
        bytes.extend(server_bytes(&capture("05_pause_checks")));
        for (at, b) in flips {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        exercise(&bytes);
        // Errors are fine; panics and hangs are not.
        let _ = rt().block_on(frames_via_connection(&bytes, &cuts));
    }
}

/// Feeds `data` to every parser that sees wire bytes.
fn exercise(data: &[u8]) {
    let small = Limits {
        max_header_block: 256,
        max_body: 256,
    };
    for limits in [Limits::default(), small] {
        if let Ok(Some(len)) = Frame::check(data, &limits) {
            assert!(len <= data.len());
            let bytes = Bytes::copy_from_slice(&data[..len]);
            if let Ok(frame) = Frame::parse(&bytes, &limits) {
                let _ = Event::from_frame(&frame);
                let _ = frame.body_text();
            }
        }
    }
    let _ = Event::from_plain(data);
    let _ = Event::from_json(data);
    let text = String::from_utf8_lossy(data);
    let _ = pairscale_esl::Status::parse(&text);
    let _ = pairscale_esl::reply::parse_count(&text);
    let _ = pairscale_esl::reply::parse_channels(&text);
    let _ = pairscale_esl::reply::parse_hupall(&text);
}
