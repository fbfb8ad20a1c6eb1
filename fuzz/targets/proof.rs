//! AFL entry point of the `proof` target (see `logvault_fuzz::proof`).

fn main() {
    afl::fuzz!(|data: &[u8]| logvault_fuzz::proof::run(data));
}
