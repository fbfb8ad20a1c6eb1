//! AFL entry point of the `query` target (see `logvault_fuzz::query`).

fn main() {
    afl::fuzz!(|data: &[u8]| logvault_fuzz::query::run(data));
}
