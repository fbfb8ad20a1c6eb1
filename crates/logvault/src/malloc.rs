//! glibc's malloc arenas. glibc gives threads arenas of their own, up to eight per core, and
//! keeps what is freed in each for reuse by that arena alone. In a 15-minute soak its 16
//! arenas held 228 MB of which 61 MB were in use, and the server's memory grew with that
//! slack while SQLite's own allocations stayed at 50 MB. With two arenas the freed memory is
//! reused instead. glibc reads the limit only from the environment when a process starts
//! (`mallopt` would need unsafe code, which the workspace forbids), so the binary starts
//! itself again, once, with `MALLOC_ARENA_MAX` set, unless the operator set a limit already.

/// Arenas unless `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` says otherwise.
pub(crate) const DEFAULT_ARENAS: &str = "2";

/// Replaces the process with the same command under `MALLOC_ARENA_MAX`; returns when a limit
/// is already set, or when that fails (then with glibc's default, which only costs memory).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn limit_arenas() {
    use std::os::unix::process::CommandExt;

    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("glibc.malloc.arena_max")
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let error = command
        .args(args)
        .env("MALLOC_ARENA_MAX", DEFAULT_ARENAS)
        .exec();
    eprintln!("warning: cannot restart with MALLOC_ARENA_MAX={DEFAULT_ARENAS}: {error}");
}

/// Other allocators have no such arenas.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn limit_arenas() {}
