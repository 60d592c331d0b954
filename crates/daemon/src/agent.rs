//! `ftsplice agent`: a backend's split-splice agent. It pulls the proxies'
//! splice tables and receives their creates and deletes over the
//! authenticated replication channel (as a receive-only peer that never
//! creates), and installs the splices whose backend is its own into the
//! `agent_egress` program: the backend's packets to the shared splice
//! address leave rewritten as the VIP's packets to the client.

use crate::config::AgentConfig;
use crate::control::{self, Control, ControlConfig, Peer, SharedSink};
use crate::metrics::Registry;
use crate::sink::SpliceSink;
use anyhow::{Context, Result};
use ftsplice_proto::teardown::TeardownConfig;
use ftsplice_proto::ProxyId;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The control-loop settings of an agent config: every replication peer
/// is a proxy it pulls from.
pub fn control_config(cfg: &AgentConfig) -> ControlConfig {
    ControlConfig {
        me: ProxyId(cfg.id),
        peers: cfg
            .replication
            .peers
            .iter()
            .map(|p| Peer {
                id: ProxyId(p.id),
                addr: SocketAddr::V4(p.addr),
                agent: false,
            })
            .collect(),
        psk: Some(cfg.replication.psk),
        teardown: TeardownConfig {
            idle: cfg.idle,
            ..TeardownConfig::default()
        },
        seen_poll: Duration::from_millis(100),
        peer_heartbeat: crate::proxy::daemon::PEER_HEARTBEAT,
        epoch: crate::proxy::daemon::epoch(),
        agent_backend: Some(cfg.backend),
        ssa: None,
        clients: None,
    }
}

/// Runs the agent with `sink` as its data plane until dropped.
pub async fn run(cfg: AgentConfig, sink: Box<dyn SpliceSink>, metrics: Registry) -> Result<()> {
    crate::proxy::daemon::check_forwarding();
    let sink: SharedSink = Arc::new(Mutex::new(sink));
    crate::proxy::daemon::start_metrics(cfg.metrics, &metrics).await?;
    let sock = std::net::UdpSocket::bind(cfg.replication.listen)
        .with_context(|| format!("binding replication.listen {}", cfg.replication.listen))?;
    let mut ctl = Control::new(
        crate::clock::now(),
        control_config(&cfg),
        sink.clone(),
        None,
        &metrics,
    );
    tokio::spawn(crate::proxy::daemon::export_dataplane_counters(
        sink.clone(),
        metrics.clone(),
    ));
    tracing::info!(
        id = cfg.id,
        backend = %cfg.backend,
        data_plane = control::lock(&sink).kind(),
        interfaces = ?cfg.interfaces,
        "agent running"
    );
    // The agent never creates: its command channel stays empty.
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let repl = control::ReplicationIo::start(sock, &mut ctl)
        .context("starting the replication reader thread")?;
    control::run(ctl, Some(repl), rx).await;
    Ok(())
}
