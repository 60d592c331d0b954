//! Running helper commands (`ip`, `tc`, ...) with their stderr captured into
//! the error.

use crate::{Error, Result};
use std::process::Command;

/// Runs `program args...`, returning its stdout; a non-zero exit is an error
/// carrying the command line and its stderr.
pub fn run_cmd(program: &str, args: &[&str]) -> Result<String> {
    let line = || format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::Command {
            cmd: line(),
            detail: format!("cannot start: {e} (is the Debian package providing it installed? see scripts/setup.sh)"),
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: line(),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_failure_with_stderr() {
        let err = run_cmd("sh", &["-c", "echo oops >&2; exit 3"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("oops"), "{msg}");
        assert!(msg.contains("sh -c"), "{msg}");
    }

    #[test]
    fn returns_stdout() {
        assert_eq!(run_cmd("sh", &["-c", "echo hi"]).unwrap(), "hi\n");
    }

    #[test]
    fn missing_program_is_an_error() {
        assert!(run_cmd("/nonexistent/ftsplice-no-such-tool", &[]).is_err());
    }
}
