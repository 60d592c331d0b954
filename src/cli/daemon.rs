//! `ftsplice lb|proxy|agent --config FILE`: loads and validates the role's
//! TOML config (errors name file, line and key) and, with `--check`, prints
//! the validated summary and exits.

use anyhow::{bail, Result};
use clap::Args;
use ftsplice_daemon::config::{AgentConfig, LbConfig, ProxyConfig};
use std::path::PathBuf;

#[derive(Args)]
pub struct DaemonArgs {
    /// The role's TOML config file.
    #[arg(long)]
    pub config: PathBuf,
    /// Validate the config, print what it says, and exit.
    #[arg(long)]
    pub check: bool,
}

/// Which daemon.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    Lb,
    Proxy,
    Agent,
}

pub fn run(role: Role, args: &DaemonArgs) -> Result<()> {
    let summary = match role {
        Role::Lb => format!("{:#?}", LbConfig::load(&args.config)?),
        Role::Proxy => {
            let mut c = ProxyConfig::load(&args.config)?;
            if let Some(r) = c.replication.as_mut() {
                r.psk = [0; 32]; // never print the key
            }
            format!("{c:#?}")
        }
        Role::Agent => {
            let mut c = AgentConfig::load(&args.config)?;
            c.replication.psk = [0; 32];
            format!("{c:#?}")
        }
    };
    if args.check {
        println!("{}: ok\n{summary}", args.config.display());
        return Ok(());
    }
    bail!(
        "{}: config is valid, but the {role:?} driver (heartbeats, replication, \
         BPF data plane) is not in this build yet; use --check to validate configs",
        args.config.display()
    )
}
