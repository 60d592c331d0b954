//! `ftsplice lb|proxy|agent --config FILE`: loads and validates the role's
//! TOML config (errors name file, line and key) and, with `--check`, prints
//! the validated summary and exits. Otherwise the proxy and agent load
//! their BPF program, attach it to the configured interfaces and run until
//! killed; the lb attaches its XDP program and runs until SIGTERM/SIGINT
//! (`ftsplice_daemon::lb`). docs/daemons.md says what they need from the
//! host.

use anyhow::{Context, Result};
use clap::Args;
use ftsplice_daemon::bpf_sink::{BpfSink, Role as Plane};
use ftsplice_daemon::config::{AgentConfig, LbConfig, ProxyConfig};
use ftsplice_daemon::metrics::Registry;
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

pub fn run(role: Role, args: &DaemonArgs) -> Result<()> {
    match role {
        Role::Lb => {
            let c = LbConfig::load(&args.config)?;
            if args.check {
                println!("{}: ok\n{c:#?}", args.config.display());
                return Ok(());
            }
            ftsplice_daemon::lb::main(c)
        }
        Role::Proxy => {
            let c = ProxyConfig::load(&args.config)?;
            if args.check {
                let mut shown = c.clone();
                if let Some(r) = shown.replication.as_mut() {
                    r.psk = [0; 32]; // never print the key
                }
                println!("{}: ok\n{shown:#?}", args.config.display());
                return Ok(());
            }
            ftsplice_daemon::logging::init(&c.log);
            let rt = runtime()?;
            rt.block_on(async move {
                let sink = BpfSink::attach(Plane::Proxy, &c.interfaces)
                    .context("loading the proxy data plane (needs root/CAP_BPF+CAP_NET_ADMIN)")?;
                ftsplice_daemon::proxy::daemon::run(c, Box::new(sink), Registry::new()).await
            })
        }
        Role::Agent => {
            let c = AgentConfig::load(&args.config)?;
            if args.check {
                let mut shown = c.clone();
                shown.replication.psk = [0; 32];
                println!("{}: ok\n{shown:#?}", args.config.display());
                return Ok(());
            }
            ftsplice_daemon::logging::init(&c.log);
            let rt = runtime()?;
            rt.block_on(async move {
                let sink = BpfSink::attach(Plane::Agent, &c.interfaces)
                    .context("loading the agent data plane (needs root/CAP_BPF+CAP_NET_ADMIN)")?;
                ftsplice_daemon::agent::run(c, Box::new(sink), Registry::new()).await
            })
        }
    }
}
