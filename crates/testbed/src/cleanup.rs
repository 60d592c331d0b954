//! `ftsplice testbed down`: removes namespaces left behind by testbed or
//! test processes that died without running their Drop guards. Names are
//! `fts<pid>x<n><tag>` (see `ftsplice_linux::unique_name`); only those whose
//! creating process no longer exists are removed, so parallel runs are safe.

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
        run_cmd("ip", &["netns", "del", &name])?;
        removed.push(name);
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
