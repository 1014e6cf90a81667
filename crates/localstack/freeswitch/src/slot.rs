//! An instance's place on this machine: a loopback address and ports no other instance uses,
//! even one started by another test process at the same time.
//!
//! Slot `n` is 127.0.0.(100 + n), SIP 16000 + n, Event Socket 17000 + n and RTP 20000 + 100n
//! to 20000 + 100n + 99: all below the kernel's ephemeral range, where `127.0.0.1:0` listeners
//! (the simulator, Kamailio, sipp) land. A slot is held by binding an abstract Unix socket
//! named after it: the kernel releases it when its holder exits, however it exits, so a crashed
//! test never leaves a slot taken. A FreeSWITCH it left running is found by the pid file in
//! the slot's folder and ended before the slot is used again.

use std::net::Ipv4Addr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use crate::error::{Error, Result};

/// How many instances can run on one machine at once.
pub const SLOTS: u16 = 100;

/// Where an instance listens: its address, its SIP and Event Socket ports, its RTP range. A
/// slot gives a test instance one; the local CodeBuild gives a sandbox node the instance's
/// private address and the fleet's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub ip: Ipv4Addr,
    pub sip_port: u16,
    pub esl_port: u16,
    /// First and last RTP port (FreeSWITCH uses the even ones).
    pub rtp_ports: (u16, u16),
}

/// A reserved slot; released when dropped.
#[derive(Debug)]
pub struct Slot {
    index: u16,
    _hold: UnixListener,
}

impl Slot {
    /// The first free slot, starting from one derived from this process so that parallel test
    /// processes rarely contend for the same one.
    pub fn reserve() -> Result<Slot> {
        let start = u16::try_from(std::process::id() % u32::from(SLOTS)).unwrap_or(0);
        for k in 0..SLOTS {
            let index = (start + k) % SLOTS;
            let name = format!("pairscale-freeswitch-slot-{index}");
            let addr = SocketAddr::from_abstract_name(name.as_bytes())
                .map_err(Error::io("naming a slot"))?;
            match UnixListener::bind_addr(&addr) {
                Ok(hold) => return Ok(Slot { index, _hold: hold }),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(Error::io(format!("reserving slot {index}"))(e)),
            }
        }
        Err(Error::NoFreeSlot { slots: SLOTS })
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    /// The slot's address and ports.
    pub fn place(&self) -> Place {
        Place {
            ip: self.ip(),
            sip_port: self.sip_port(),
            esl_port: self.esl_port(),
            rtp_ports: self.rtp_ports(),
        }
    }

    pub fn ip(&self) -> Ipv4Addr {
        let last = u8::try_from(100 + self.index).unwrap_or(u8::MAX);
        Ipv4Addr::new(127, 0, 0, last)
    }

    pub fn sip_port(&self) -> u16 {
        16_000 + self.index
    }

    pub fn esl_port(&self) -> u16 {
        17_000 + self.index
    }

    /// First and last RTP port (FreeSWITCH uses the even ones: 50 calls).
    pub fn rtp_ports(&self) -> (u16, u16) {
        let first = 20_000 + 100 * self.index;
        (first, first + 99)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_held_slot_is_not_given_twice_and_is_free_again_once_dropped() {
        let a = Slot::reserve().unwrap();
        let b = Slot::reserve().unwrap();
        assert_ne!(a.index(), b.index());
        assert_ne!(a.ip(), b.ip());
        let freed = a.index();
        drop(a);
        let name = format!("pairscale-freeswitch-slot-{freed}");
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        assert!(
            UnixListener::bind_addr(&addr).is_ok(),
            "slot {freed} still held"
        );
    }

    #[test]
    fn every_slot_stays_below_the_ephemeral_ports_and_apart_from_the_others() {
        let last = Slot {
            index: SLOTS - 1,
            _hold: UnixListener::bind_addr(
                &SocketAddr::from_abstract_name(b"pairscale-freeswitch-slot-test").unwrap(),
            )
            .unwrap(),
        };
        assert_eq!(last.ip(), Ipv4Addr::new(127, 0, 0, 199));
        assert!(last.rtp_ports().1 < 32_768);
        assert!(last.sip_port() < 17_000 && last.esl_port() < 20_000);
    }
}
