//! The compiled BPF objects, built by build.rs from c/ and embedded here.

/// proxy.c: `proxy_ingress` (TC ingress) and `splice_test` (test entry).
pub static PROXY_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/proxy.o"));
/// agent.c: `agent_egress` (TC egress, split splice).
pub static AGENT_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/agent.o"));
/// lb.c: `lb` (XDP).
pub static LB_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb.o"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_bpf_elf() {
        for obj in [PROXY_OBJ, AGENT_OBJ, LB_OBJ] {
            assert_eq!(&obj[..4], b"\x7fELF");
            // e_machine (little-endian object) is EM_BPF = 247.
            assert_eq!(u16::from_le_bytes([obj[18], obj[19]]), 247);
        }
    }
}
