//! `ftsplice testbed down`: removes what testbed or test processes left
//! behind when they exited without running their Drop guards (`testbed up`
//! does so on purpose): the processes inside their namespaces (daemons,
//! nginx, iperf3), the namespaces, their temp directories (run dirs,
//! nginx dirs) and sparse bulk files in /dev/shm. Names are `fts<pid>x<n><tag>` (see
//! `ftsplice_linux::unique_name`); only those whose creating process no
//! longer exists are touched, so parallel runs are safe.

use anyhow::Result;
use ftsplice_linux::run_cmd;
use std::path::Path;

/// The creating pid encoded in a namespace name, if it is one of ours.
pub fn creator_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("fts")?;
    let (pid, _) = rest.split_once('x')?;
    pid.parse().ok()
}

/// Deletes leftover namespaces; returns their names.
pub fn down() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Ok(removed);
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = creator_pid(&name) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        // Every process in the namespace was started by that dead process.
        let pids = run_cmd("ip", &["netns", "pids", &name]).unwrap_or_default();
        for p in pids.split_whitespace() {
            let _ = run_cmd("kill", &["-9", p]);
        }
        run_cmd("ip", &["netns", "del", &name])?;
        removed.push(name);
    }
    // Run and nginx directories in the temp dir; sparse bulk files
    // (system::BigFile) in /dev/shm.
    for base in [std::env::temp_dir(), "/dev/shm".into()] {
        let Ok(dir) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = creator_pid(&name) else {
                continue;
            };
            if Path::new("/proc").join(pid.to_string()).exists() {
                continue;
            }
            let p = entry.path();
            let gone = if p.is_dir() {
                std::fs::remove_dir_all(&p).is_ok()
            } else {
                std::fs::remove_file(&p).is_ok()
            };
            if gone {
                removed.push(p.display().to_string());
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_our_names() {
        assert_eq!(creator_pid("fts1234x7bc"), Some(1234));
        assert_eq!(creator_pid("fts1234x0"), Some(1234));
        assert_eq!(creator_pid("ftsx1"), None);
        assert_eq!(creator_pid("other"), None);
        assert_eq!(creator_pid("fts12ab"), None);
    }
}
