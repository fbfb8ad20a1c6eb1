//! The fuzz targets as plain functions over bytes, one per parser of outside input. Each bin
//! in `targets/` hands AFL's inputs to one of them; `seeds` writes their starting corpora.
//! Every function panics (so AFL records a crash) when a property fails, not only when the
//! code under test does.

pub mod checkpoint;
pub mod ingest;
pub mod otlp;
pub mod proof;
pub mod query;
pub mod scrub;
pub mod seeds;
pub mod session;

/// The first byte (the mode of a multi-mode target) and the rest.
pub fn split_mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(mode, rest)| (*mode, rest))
}
