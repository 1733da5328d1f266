//! `remote_write_decode`: the remote write receiver's body decoder (snappy
//! block format, then the protobuf `WriteRequest`) in vigil-examples.
//!
//! Every input is used twice: as a body as it arrives (snappy), and as raw
//! protobuf bytes (compressed first, so the protobuf layer sees arbitrary
//! bytes too). Decoding must never panic; whatever decodes must encode and
//! decode again to the same bytes.

use vigil_examples::monitor::remote::proto::{compress, decode, encode};

/// The receiver's own bound on a decoded body is larger; a small one keeps
/// runs fast and still exercises the size check.
const MAX_DECODED: usize = 1 << 20;

fn round_trip(body: &[u8]) {
    if let Ok(req) = decode(body, MAX_DECODED) {
        let again = encode(&req);
        let back = decode(&again, usize::MAX).expect("our own encoding decodes");
        assert_eq!(encode(&back), again, "re-encoding changed the request");
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    round_trip(data);
    round_trip(&compress(data));
}
