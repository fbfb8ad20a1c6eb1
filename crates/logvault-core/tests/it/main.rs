//! Property tests of logvault-core's parsers of outside input, each the fast mirror of a fuzz
//! target in `fuzz/` (see docs/HARDENING.md): request splitting and validation, the scrubber,
//! signed checkpoints, proof verification and OTLP logs decoding. Inputs the fuzzer found are kept as cases.

mod checkpoint;
mod merkle;
mod otlp;
mod scrub;
mod siem;
mod validate;

use proptest::test_runner::Config;

/// Few enough cases that each property runs in about a second; the fuzzer goes deep.
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
