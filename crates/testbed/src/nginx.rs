//! An unmodified nginx serving static files inside a namespace, and storing
//! uploads: `PUT /up/NAME` writes `www/up/NAME` through Debian nginx's
//! built-in WebDAV module (`dav_methods PUT`, unlimited body size), so the
//! scenarios can hash exactly what the backend stored. Its config is
//! generated into a private temp dir and listens only on the given namespace
//! addresses; the process (started by us) is killed by pid and the dir
//! removed on drop.
//!
//! It runs at nice [`NICE`] when allowed (root): it stands for a backend
//! machine of its own, but here one nginx process shares two cores with
//! every daemon, client and whatever else the host runs. Starved at normal
//! priority (seen: runnable for 14 s straight under a load average of 10),
//! it stopped reading its sockets for seconds; the proxies then could not
//! get the request's first ~120 kB acknowledged within their 2 s settle
//! time, relayed those connections in user space instead of splicing them
//! (46 of 100 in one run), and the ones on the killed proxy broke.

use anyhow::{bail, Context, Result};
use ftsplice_linux::{unique_name, NetNs};
use std::net::{SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Nice value nginx runs at (when the caller may raise priority).
pub const NICE: i32 = -10;

/// A running nginx and its files.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddrV4,
}

/// The nginx.conf for `dir` listening on `addrs`.
pub fn config(dir: &Path, addrs: &[SocketAddrV4]) -> String {
    let d = dir.display();
    let listen: String = addrs
        .iter()
        .map(|a| format!("\x20   listen {a};\n"))
        .collect();
    format!(
        "master_process off;\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {d}/tmp-body;\n\
         \x20 proxy_temp_path {d}/tmp-proxy;\n\
         \x20 fastcgi_temp_path {d}/tmp-fcgi;\n\
         \x20 uwsgi_temp_path {d}/tmp-uwsgi;\n\
         \x20 scgi_temp_path {d}/tmp-scgi;\n\
         \x20 sendfile on;\n\
         \x20 server {{\n\
         {listen}\
         \x20   root {d}/www;\n\
         \x20   location /up/ {{\n\
         \x20     dav_methods PUT;\n\
         \x20     create_full_put_path on;\n\
         \x20     client_max_body_size 0;\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n"
    )
}

impl Nginx {
    /// Starts nginx in `ns` on `addr`, serving `files` (name, bytes), and
    /// waits until it accepts connections.
    pub fn start(ns: &NetNs, addr: SocketAddrV4, files: &[(&str, &[u8])]) -> Result<Nginx> {
        Nginx::start_on(ns, &[addr], files)
    }

    /// Like [`Nginx::start`], listening on every address of `addrs` (the
    /// first is [`Nginx::addr`]); file names may contain directories.
    pub fn start_on(ns: &NetNs, addrs: &[SocketAddrV4], files: &[(&str, &[u8])]) -> Result<Nginx> {
        let addr = *addrs.first().context("nginx needs an address")?;
        let dir = std::env::temp_dir().join(unique_name("nginx"));
        std::fs::create_dir_all(dir.join("www").join("up"))?;
        for (name, bytes) in files {
            let path = dir.join("www").join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)?;
        }
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(&dir, addrs))?;
        let nice = if ftsplice_linux::is_root() { NICE } else { 0 };
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "nice", "-n", &nice.to_string()])
            .args(["nginx", "-c"])
            .arg(&conf)
            .args(["-p", &dir.display().to_string(), "-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nginx (is it installed? see scripts/setup.sh)")?;
        let mut n = Nginx { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = ns
                .run(move || TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .is_ok();
            if up {
                return Ok(n);
            }
            if let Some(status) = n.child.try_wait()? {
                let log = std::fs::read_to_string(n.dir.join("error.log")).unwrap_or_default();
                bail!("nginx exited with {status}: {log}");
            }
            if Instant::now() > deadline {
                bail!("nginx did not listen on {addr} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `PUT /up/NAME` stored its body.
    pub fn uploaded(&self, name: &str) -> PathBuf {
        self.dir.join("www").join("up").join(name)
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `ip netns exec` execs nginx, so this pid is nginx itself. With
        // `master_process off` it is the only process: SIGKILL to a master
        // would orphan its worker, which then keeps ports and inherited
        // descriptors (seen: a leaked worker held a file lock of the caller).
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn config_listens_only_on_the_given_address() {
        let c = config(
            Path::new("/tmp/x"),
            &[SocketAddrV4::new(Ipv4Addr::new(198, 18, 61, 2), 80)],
        );
        assert!(c.contains("listen 198.18.61.2:80;"));
        assert!(c.contains("root /tmp/x/www;"));
        assert!(c.contains("pid /tmp/x/nginx.pid;"));
        // One process only, so killing it by pid leaves no orphaned worker.
        assert!(c.contains("master_process off;"));
        assert_eq!(c.matches("listen").count(), 1);
        // Uploads are stored, whatever their size.
        assert!(c.contains("dav_methods PUT;"));
        assert!(c.contains("client_max_body_size 0;"));
        let two = config(
            Path::new("/tmp/x"),
            &[
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 61, 2), 80),
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, 10), 80),
            ],
        );
        assert!(two.contains("listen 198.18.2.10:80;"));
    }
}
