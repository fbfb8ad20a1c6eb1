//! Writes the starting corpus of every target into the directory given (`fuzz/corpus`).

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| "corpus".into(), std::path::PathBuf::from);
    logvault_fuzz::seeds::write_all(&dir)
}
