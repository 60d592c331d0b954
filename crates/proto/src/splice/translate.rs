//! Packet translation through a splice (owned by the wire+translate work).
