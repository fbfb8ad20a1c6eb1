//! AFL entry point of the `scrub` target (see `logvault_fuzz::scrub`).

fn main() {
    afl::fuzz!(|data: &[u8]| logvault_fuzz::scrub::run(data));
}
