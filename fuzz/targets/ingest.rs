//! AFL entry point of the `ingest` target (see `logvault_fuzz::ingest`).

fn main() {
    afl::fuzz!(|data: &[u8]| logvault_fuzz::ingest::run(data));
}
