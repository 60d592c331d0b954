//! Turns transfers into the report's connection counts: a PUT completed
//! when the backend answered 2xx *and* the file it stored hashes to what
//! the client sent; a GET when it got 200 and the body hashes to the served
//! file's. A transfer that errored or got another status is broken; a 2xx
//! with different bytes is corrupted.

use crate::load::Transfer;
use ftsplice_report::Connections;
use std::path::Path;

/// Counts PUTs against the files nginx stored under `up_dir`
/// (`<conn>.bin`).
pub fn puts(ts: &[Transfer], up_dir: &Path) -> Connections {
    count(ts, |t| {
        crate::body::file_digest(&up_dir.join(format!("{}.bin", t.conn))) == Some(t.digest)
    })
}

/// Counts GETs against the digests of the served files (`conn % n`).
pub fn gets(ts: &[Transfer], files: &[[u8; 32]]) -> Connections {
    count(ts, |t| {
        !files.is_empty() && files[(t.conn % files.len() as u64) as usize] == t.digest
    })
}

fn count(ts: &[Transfer], intact: impl Fn(&Transfer) -> bool) -> Connections {
    let mut c = Connections {
        total: ts.len() as u64,
        ..Connections::default()
    };
    for t in ts {
        match t.status {
            Ok(s) if (200..300).contains(&s) => {
                if intact(t) {
                    c.completed += 1;
                } else {
                    c.corrupted += 1;
                }
            }
            _ => c.broken += 1,
        }
    }
    c
}

/// The first few broken transfers' reasons, for error messages.
pub fn failures(ts: &[Transfer], n: usize) -> String {
    ts.iter()
        .filter_map(|t| match &t.status {
            Ok(s) if (200..300).contains(s) => None,
            Ok(s) => Some(format!("conn {}: status {s}", t.conn)),
            Err(e) => Some(format!("conn {}: {e}", t.conn)),
        })
        .take(n)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(conn: u64, status: Result<u16, String>, digest: u8) -> Transfer {
        Transfer {
            conn,
            local_port: 0,
            status,
            start_ms: 0.0,
            end_ms: 0.0,
            bytes: 0,
            digest: [digest; 32],
            moves: vec![],
        }
    }

    #[test]
    fn counts_completed_broken_corrupted() {
        let files = [[1u8; 32], [2u8; 32]];
        let ts = [
            t(0, Ok(200), 1),
            t(1, Ok(200), 2),
            t(2, Ok(200), 2), // file 0 expected: corrupted
            t(3, Ok(404), 2),
            t(4, Err("reset".into()), 0),
        ];
        let c = gets(&ts, &files);
        assert_eq!((c.total, c.completed, c.corrupted, c.broken), (5, 2, 1, 2));
        assert!(failures(&ts, 5).contains("conn 4: reset"));
        assert!(failures(&ts, 5).contains("status 404"));
    }

    #[test]
    fn puts_compare_the_stored_file() {
        let dir = std::env::temp_dir().join(ftsplice_linux::unique_name("verify"));
        std::fs::create_dir_all(&dir).unwrap();
        let body = crate::body::Body::new(1, 0, 1000).to_vec();
        std::fs::write(dir.join("0.bin"), &body).unwrap();
        std::fs::write(dir.join("1.bin"), &body[..999]).unwrap();
        let d = crate::body::digest(1, 0, 1000);
        let mut a = t(0, Ok(201), 0);
        a.digest = d;
        let mut b = t(1, Ok(201), 0);
        b.digest = d;
        let mut missing = t(2, Ok(201), 0);
        missing.digest = d;
        let c = puts(&[a, b, missing], &dir);
        assert_eq!((c.completed, c.corrupted, c.broken), (1, 2, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
