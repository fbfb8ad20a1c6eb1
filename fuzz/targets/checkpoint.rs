//! AFL entry point of the `checkpoint` target (see `logvault_fuzz::checkpoint`).

fn main() {
    afl::fuzz!(|data: &[u8]| logvault_fuzz::checkpoint::run(data));
}
