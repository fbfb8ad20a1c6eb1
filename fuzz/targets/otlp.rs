//! AFL entry point of the `otlp` target (see `logvault_fuzz::otlp`).

fn main() {
    afl::fuzz!(|data: &[u8]| logvault_fuzz::otlp::run(data));
}
