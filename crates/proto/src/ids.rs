//! Identity of a member of the proxy tier. Splice ids carry the creating
//! proxy's id in their top 16 bits (see [`crate::splice::SpliceId`]), so a
//! proxy id is 16 bits wide.

use core::fmt;

/// A proxy's identity, unique within the tier and stable across restarts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProxyId(pub u16);

impl fmt::Debug for ProxyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl fmt::Display for ProxyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl crate::splice::SpliceId {
    /// Builds the id of the `counter`-th splice created by `creator`.
    pub fn compose(creator: ProxyId, counter: u64) -> Self {
        crate::splice::SpliceId((u64::from(creator.0) << 48) | (counter & ((1 << 48) - 1)))
    }

    /// The proxy that created this splice.
    pub fn creator(self) -> ProxyId {
        ProxyId((self.0 >> 48) as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splice::SpliceId;

    #[test]
    fn splice_id_carries_creator() {
        let id = SpliceId::compose(ProxyId(7), 42);
        assert_eq!(id.creator(), ProxyId(7));
        assert_eq!(id.0 & 0xffff_ffff_ffff, 42);
        // The counter wraps inside its 48 bits instead of corrupting the creator.
        let wrapped = SpliceId::compose(ProxyId(3), u64::MAX);
        assert_eq!(wrapped.creator(), ProxyId(3));
        assert_eq!(format!("{:?}", ProxyId(9)), "p9");
    }
}
