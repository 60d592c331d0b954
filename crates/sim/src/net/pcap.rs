//! libpcap capture files, written by hand: nanosecond-resolution format
//! (magic 0xA1B23C4D), link type RAW (101, bare IPv4 packets). Open them in
//! Wireshark or `tcpdump -r`.

use std::io::{self, Write};

/// LINKTYPE_RAW: each record is an IP packet with no link-layer header.
pub const LINKTYPE_RAW: u32 = 101;
const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
const SNAPLEN: u32 = 65_535;

/// Writes packets to a pcap stream.
pub struct PcapWriter<W: Write> {
    out: W,
    pub records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, records: 0 })
    }

    /// Appends one packet seen at `at_ns` nanoseconds.
    pub fn write(&mut self, at_ns: u64, packet: &[u8]) -> io::Result<()> {
        let caplen = packet.len().min(SNAPLEN as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((at_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((at_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(packet.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&packet[..caplen])?;
        self.records += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(3_000_000_123, &[0x45, 0, 0, 20]).unwrap();
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + 4);
        assert_eq!(&b[0..4], &[0x4D, 0x3C, 0xB2, 0xA1]);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 101);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 123);
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 4);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 4);
        assert_eq!(&b[40..], &[0x45, 0, 0, 20]);
    }
}
