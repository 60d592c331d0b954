//! The aux server of the webmail service (the paper's IMAP mail store):
//! stores every mail a backend appends and answers with its number. A
//! request run twice stores the mail twice, which is what the aux logger
//! (`ftsplice_recovery::aux`, driven by the logger node) prevents during a
//! replay.

use super::app;
use super::control::{Ctl, AUX_PORT, PORT};
use crate::net::node::{Ctx, Frame, FrameKind, IfaceId, Node};
use crate::net::udp;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddrV4};

pub struct MailStore {
    addr: Ipv4Addr,
    /// Every stored mail, with the transaction id that stored it.
    pub mails: Vec<(u64, Vec<u8>)>,
}

impl MailStore {
    pub fn new(addr: Ipv4Addr) -> MailStore {
        MailStore {
            addr,
            mails: Vec::new(),
        }
    }
}

impl Node for MailStore {
    fn kind(&self) -> &'static str {
        "aux"
    }

    fn handle_frame(&mut self, ctx: &mut Ctx<'_>, _iface: IfaceId, frame: Frame) {
        if frame.kind != FrameKind::Ip {
            return;
        }
        let d = match udp::parse(&frame.bytes) {
            Ok(d) if d.dst.port() == AUX_PORT => d,
            Ok(_) => return ctx.stats().drop("aux: not for the mail store"),
            Err(e) => return ctx.stats().drop(e.reason()),
        };
        let Some(Ctl::AuxRequest { tx, body }) = Ctl::decode(d.payload) else {
            return ctx.stats().drop("aux: bad request");
        };
        self.mails.push((tx, body));
        let reply = Ctl::AuxResponse {
            tx,
            body: app::aux_answer(self.mails.len()),
        };
        let b = udp::build(
            SocketAddrV4::new(self.addr, AUX_PORT),
            SocketAddrV4::new(*d.src.ip(), PORT),
            &reply.encode(),
        );
        ctx.send_ip(b);
    }

    fn crash(&mut self) {}

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
