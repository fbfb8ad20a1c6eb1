//! The server under test: the `logvault` binary itself, started as a child process so its
//! memory can be measured apart from the load generator.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::StorageArgs;

/// A running `logvault serve`.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) address: SocketAddr,
}

/// `exe subcommand` on `storage`.
pub(crate) fn command(exe: &Path, subcommand: &str, storage: &StorageArgs) -> Command {
    let mut command = Command::new(exe);
    command.arg(subcommand).arg("--data-dir").arg(storage.dir());
    if let Some(url) = storage.postgres_url() {
        // In the environment, not the arguments: the URL may hold a password.
        command.env("LOGVAULT_DB", url);
    }
    command
}

impl ServerProcess {
    /// Starts `exe serve` on `storage` and waits until it listens.
    pub(crate) fn start(exe: &Path, storage: &StorageArgs) -> anyhow::Result<Self> {
        Self::start_with_env(exe, storage, &[])
    }

    /// [`ServerProcess::start`] with extra `LOGVAULT_*` settings in its environment.
    pub(crate) fn start_with_env(
        exe: &Path,
        storage: &StorageArgs,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut child = command(exe, "serve", storage)
            .envs(env.iter().copied())
            // The benchmark drives one key as hard as it can: no per-key limit.
            .args(["--listen", "127.0.0.1:0", "--rate-limit", "0"])
            // Its people keep one session for the whole run, however long, so no page or
            // live tail is sent back to sign in halfway.
            .args(["--session-idle", "24h", "--session-lifetime", "24h"])
            .env("LOGVAULT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let Some(line) = lines.next().transpose()? else {
                let status = child.wait()?;
                anyhow::bail!("the server exited before listening ({status})");
            };
            if let Some(address) = line.strip_prefix("logvault listening on http://") {
                break address.trim().parse()?;
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ServerProcess { child, address })
    }

    /// The server's process id, for reading its `/proc` entries.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the server so far, in MiB (Linux `VmHWM`).
    pub(crate) fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// CPU time the server has used so far, user and system, all threads (Linux
    /// `/proc/PID/stat`, whose clock ticks are 1/100 s on every Linux ABI).
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        Some((ticks(11)? + ticks(12)?) / 100.0)
    }

    /// SIGKILL: an unclean stop, as after a crash or power loss of the process.
    pub(crate) fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM and wait for a graceful exit.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not stop within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
