//! Daemons (and other long-running tools) as supervised child processes in
//! a namespace: `ip netns exec NS PROGRAM ARGS`, stdout and stderr appended
//! to `RUN_DIR/NAME.log`, killed on drop. `ip netns exec` execs the program,
//! so the child's pid is the daemon's own and `kill -9` hits it, not a
//! wrapper. Children get no inherited descriptors besides the log file.

use anyhow::{bail, Context, Result};
use ftsplice_linux::NetNs;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process we own.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
    /// Set once we killed it on purpose (a fault), so supervision does not
    /// report it as a crash.
    killed: bool,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Starts `program args` in `ns`, logging to `dir/name.log`.
    pub fn spawn(
        ns: &NetNs,
        dir: &Path,
        name: &str,
        program: &Path,
        args: &[&str],
    ) -> Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(program)
            .args(args)
            // An error exit prints the error, not a captured backtrace.
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: {}", program.display()))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
            killed: false,
            exited: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's first lines (where a startup error is) and its last `n`,
    /// each cut to 300 characters.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let cut = |l: &&str| l.chars().take(300).collect::<String>();
        if lines.len() <= n + 3 {
            return lines.iter().map(cut).collect::<Vec<_>>().join("\n");
        }
        let mut out: Vec<String> = lines[..3].iter().map(cut).collect();
        out.push(format!("  [... {} lines ...]", lines.len() - 3 - n));
        out.extend(lines[lines.len() - n..].iter().map(cut));
        out.join("\n")
    }

    /// Whether it still runs (reaps it if not).
    pub fn alive(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(st)) => {
                self.exited = Some(st);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// An error naming the process, its exit status and log tail if it died
    /// without being killed by us.
    pub fn check(&mut self) -> Result<()> {
        if self.killed || self.alive() {
            return Ok(());
        }
        bail!(
            "{} (pid {}) exited unexpectedly with {}; last log lines ({}):\n{}",
            self.name,
            self.pid(),
            self.exited.map_or("?".into(), |s| s.to_string()),
            self.log.display(),
            self.log_tail(8)
        )
    }

    /// SIGKILL, the crash fault; waits until it is gone.
    pub fn kill9(&mut self) -> Result<()> {
        self.killed = true;
        if self.alive() {
            self.child.kill().context("kill -9")?;
            self.exited = Some(self.child.wait()?);
        }
        Ok(())
    }

    /// Waits until `ready()` holds while the process stays alive.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            self.check()?;
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {:?}; last log lines ({}):\n{}",
                    self.name,
                    timeout,
                    self.log.display(),
                    self.log_tail(8)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_linux::skip_unless_root;

    #[test]
    fn supervises_logs_and_kills() {
        if skip_unless_root("supervises_logs_and_kills") {
            return;
        }
        let ns = NetNs::new("proc").unwrap();
        let dir = std::env::temp_dir().join(ftsplice_linux::unique_name("proctest"));
        std::fs::create_dir_all(&dir).unwrap();
        let sh = Path::new("/bin/sh");
        let mut p =
            Proc::spawn(&ns, &dir, "sleeper", sh, &["-c", "echo up; exec sleep 30"]).unwrap();
        p.wait_ready(Duration::from_secs(5), || {
            std::fs::read_to_string(dir.join("sleeper.log"))
                .unwrap_or_default()
                .contains("up")
        })
        .unwrap();
        assert!(p.alive());
        p.check().unwrap();
        let pid = p.pid();
        p.kill9().unwrap();
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        p.check().unwrap(); // killed on purpose: not an error
        let mut q = Proc::spawn(&ns, &dir, "crasher", sh, &["-c", "echo boom; exit 3"]).unwrap();
        let err = q
            .wait_ready(Duration::from_secs(5), || false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("crasher") && err.contains("boom"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
