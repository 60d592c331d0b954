//! Network namespaces as RAII guards: created with `ip netns add` (which
//! bind-mounts the namespace at /run/netns/NAME), entered per thread with
//! `setns(2)`, deleted on drop.

#![allow(unsafe_code)] // FFI: every block below has a `// SAFETY:` line.

use crate::{run_cmd, Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Longest namespace name we create (keeps `ip` output and paths readable).
const MAX_NAME: usize = 40;

/// A name no other live process or thread of this process uses: `fts` +
/// pid + a per-process counter + the caller's tag. Tests run in parallel, in
/// several processes, so both parts are needed.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("fts{}x{}{}", std::process::id(), n, tag)
}

/// An owned network namespace, deleted (with every interface in it) on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a fresh namespace named [`unique_name`]`(tag)` with loopback up.
    pub fn new(tag: &str) -> Result<NetNs> {
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::BadName(
                tag.into(),
                "tags are ASCII letters, digits and '-'",
            ));
        }
        let name = unique_name(tag);
        if name.len() > MAX_NAME {
            return Err(Error::BadName(name, "namespace name too long"));
        }
        // A namespace of this name can only be left over from a dead process
        // that had our pid: remove it.
        if Path::new("/run/netns").join(&name).exists() {
            let _ = run_cmd("ip", &["netns", "del", &name]);
        }
        run_cmd("ip", &["netns", "add", &name])?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME args...` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_cmd("ip", &all)
    }

    /// Runs `program args...` inside the namespace (`ip netns exec`).
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run_cmd("ip", &all)
    }

    /// Sets a sysctl inside the namespace (e.g. `net.ipv4.ip_forward`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Moves the calling thread into this namespace. Only for threads that
    /// exist to work in it: see [`NetNs::run`] and [`NetNs::spawn`].
    fn enter(&self) -> Result<()> {
        let file =
            File::open(Path::new("/run/netns").join(&self.name)).map_err(|source| Error::Sys {
                op: "open /run/netns",
                source,
            })?;
        // SAFETY: `file` is an open namespace file for the whole call;
        // setns only changes the calling thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(Error::last_os("setns"));
        }
        Ok(())
    }

    /// Runs `f` on a new thread inside this namespace and waits for it.
    /// Sockets `f` creates belong to the namespace and can be used from any
    /// thread afterwards.
    pub fn run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter()?;
                Ok(f())
            })
            .join()
            .map_err(|_| Error::Panicked(self.name.clone()))?
        })
    }

    /// Spawns a thread living inside this namespace (servers, pumps).
    pub fn spawn<T, F>(&self, f: F) -> std::thread::JoinHandle<Result<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let me = NetNs {
            name: self.name.clone(),
        };
        // `me` only borrows the name: never delete from here, not even when
        // `f` panics.
        let me = std::mem::ManuallyDrop::new(me);
        std::thread::spawn(move || me.enter().map(|()| f()))
    }

    /// The ifindex of `dev` inside this namespace.
    pub fn ifindex(&self, dev: &str) -> Result<u32> {
        let dev = dev.to_string();
        let name = self.name.clone();
        self.run(move || {
            let c = std::ffi::CString::new(dev.clone())
                .map_err(|_| Error::BadName(dev.clone(), "interior NUL"))?;
            // SAFETY: `c` is a valid NUL-terminated string for the call.
            let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if idx == 0 {
                return Err(Error::State(format!("no interface {dev} in {name}")));
            }
            Ok(idx)
        })?
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run_cmd("ip", &["netns", "del", &self.name]) {
            eprintln!("warning: cannot delete namespace {}: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skip_unless_root;

    #[test]
    fn names_are_unique_and_tagged() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(a.starts_with("fts") && a.ends_with('t'));
    }

    #[test]
    fn rejects_bad_tags() {
        assert!(matches!(NetNs::new("a/b"), Err(Error::BadName(..))));
        assert!(matches!(NetNs::new(""), Err(Error::BadName(..))));
    }

    #[test]
    fn namespace_is_isolated_and_deleted_on_drop() {
        if skip_unless_root("namespace_is_isolated_and_deleted_on_drop") {
            return;
        }
        let ns = NetNs::new("iso").unwrap();
        let path = Path::new("/run/netns").join(ns.name());
        assert!(path.exists());
        // Only loopback exists inside.
        let links = ns.ip(&["-o", "link"]).unwrap();
        assert_eq!(links.lines().count(), 1, "{links}");
        assert_eq!(ns.ifindex("lo").unwrap(), 1);
        // A thread inside sees its own namespace inode, not ours.
        let inner = ns
            .run(|| std::fs::read_link("/proc/thread-self/ns/net").unwrap())
            .unwrap();
        let outer = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        assert_ne!(inner, outer);
        drop(ns);
        assert!(!path.exists());
    }
}
