//! AFL entry point of the `session` target (see `logvault_fuzz::session`).

fn main() {
    afl::fuzz!(|data: &[u8]| logvault_fuzz::session::run(data));
}
