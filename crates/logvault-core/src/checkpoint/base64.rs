//! Standard base64 with padding (RFC 4648 §4), as signed notes and checkpoints use it. The
//! decoder is strict: one spelling per byte string, so a note cannot be re-encoded silently.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` with `=` padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let sextets = [
            b0 >> 2,
            (b0 & 0x03) << 4 | b1 >> 4,
            (b1 & 0x0f) << 2 | b2 >> 6,
            b2 & 0x3f,
        ];
        for (position, sextet) in sextets.into_iter().enumerate() {
            if position <= chunk.len() {
                text.push(char::from(ALPHABET[usize::from(sextet)]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Decodes padded standard base64; `None` for anything [`encode`] would not have written:
/// a length not a multiple of 4, a foreign character, misplaced padding, or non-zero bits
/// left over in the last character.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut decoded = Vec::with_capacity(bytes.len() / 4 * 3);
    let n_chunks = bytes.len() / 4;
    for (chunk_index, chunk) in bytes.chunks_exact(4).enumerate() {
        let n_padding = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        let is_last = chunk_index + 1 == n_chunks;
        if n_padding > 2 || (n_padding > 0 && !is_last) {
            return None;
        }
        let mut sextets = [0u8; 4];
        for (slot, &byte) in sextets.iter_mut().zip(&chunk[..4 - n_padding]) {
            *slot = sextet(byte)?;
        }
        let [s0, s1, s2, s3] = sextets;
        let triple = [s0 << 2 | s1 >> 4, s1 << 4 | s2 >> 2, s2 << 6 | s3];
        match n_padding {
            0 => decoded.extend_from_slice(&triple),
            1 if s2 & 0x03 == 0 => decoded.extend_from_slice(&triple[..2]),
            2 if s1 & 0x0f == 0 => decoded.push(triple[0]),
            _ => return None,
        }
    }
    Some(decoded)
}

/// The 6-bit value of one alphabet character.
fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10 test vectors.
    const RFC_4648: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn matches_rfc_4648_vectors() {
        for (plain, encoded) in RFC_4648 {
            assert_eq!(encode(plain.as_bytes()), encoded, "encode {plain:?}");
            assert_eq!(
                decode(encoded),
                Some(plain.as_bytes().to_vec()),
                "decode {encoded:?}"
            );
        }
    }

    #[test]
    fn round_trips_every_length_and_byte() {
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len * 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)), Some(bytes), "length {len}");
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)), Some(all));
    }

    #[test]
    fn refuses_everything_encode_would_not_write() {
        let cases = [
            ("missing padding", "Zg"),
            ("short padding", "Zg="),
            ("three padding characters", "Z==="),
            ("only padding", "===="),
            ("leftover bits after one byte", "Zh=="),
            ("leftover bits after two bytes", "Zm9="),
            ("padding in the middle", "Zg==Zm9v"),
            ("padding inside a group", "Z=g="),
            ("newline", "Zm9v\n"),
            ("space", "Zm 9v"),
            ("url-safe alphabet", "-_-_"),
            ("non-ascii", "Zm9\u{e9}"),
        ];
        for (name, text) in cases {
            assert_eq!(decode(text), None, "{name}");
        }
    }
}
