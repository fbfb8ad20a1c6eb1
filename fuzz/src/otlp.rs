//! OTLP logs decoding (`POST /v1/logs`): arbitrary bytes as protobuf and as OTLP/JSON must
//! decode or be refused without a panic; what decodes must re-encode to itself, map the same
//! way twice (the ids an exporter's retry relies on), and every mapped record must go through
//! the native validation without a panic.

use logvault_core::otlp::{Encoding, decode_request, map_request};
use logvault_core::validate::{Limits, validate_event};
use prost::Message;

/// Mode (mod 2): protobuf, JSON.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = crate::split_mode(data) else {
        return;
    };
    let encoding = match mode % 2 {
        0 => Encoding::Protobuf,
        _ => Encoding::Json,
    };
    let Ok(request) = decode_request(rest, encoding) else {
        return;
    };
    // Compared as bytes: a NaN double is not equal to itself, its encoding is.
    let bytes = request.encode_to_vec();
    let again = decode_request(&bytes, Encoding::Protobuf).expect("our own encoding decodes");
    assert_eq!(again.encode_to_vec(), bytes, "protobuf round trip");
    let mapped = map_request(&request);
    assert_eq!(
        format!("{mapped:?}"),
        format!("{:?}", map_request(&again)),
        "the same records map to the same events and ids"
    );
    let limits = Limits::default();
    for (index, record) in mapped.iter().enumerate() {
        if let Ok((kind, value)) = record {
            let _ = validate_event(*kind, index, value, "acct_fuzz", &limits);
        }
    }
}
