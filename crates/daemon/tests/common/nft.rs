//! nftables tables in a test namespace, deleted when dropped: packet drops
//! and counters that make a test's packet sequence deterministic (drop one
//! segment to open a hole, hold back ARP to delay a connect, count the
//! transmissions of a segment).

use ftsplice_linux::NetNs;

/// One table with one base chain on `hook` (family `ip` or `arp`).
pub struct NftTable<'a> {
    ns: &'a NetNs,
    family: &'static str,
    name: &'static str,
}

impl<'a> NftTable<'a> {
    /// Creates table `name` with chain `c` on `hook` (`input`, `output`,
    /// ...), accepting by default, then adds `rules` (nft rule syntax, one
    /// statement list each).
    pub fn new(
        ns: &'a NetNs,
        family: &'static str,
        name: &'static str,
        hook: &str,
        rules: &[&str],
    ) -> NftTable<'a> {
        let t = NftTable { ns, family, name };
        t.nft(&["add", "table", family, name]);
        let chain = format!("{{ type filter hook {hook} priority 0; policy accept; }}");
        t.nft(&["add", "chain", family, name, "c", &chain]);
        for r in rules {
            let mut args = vec!["add", "rule", family, name, "c"];
            args.extend(r.split_whitespace());
            t.nft(&args);
        }
        t
    }

    fn nft(&self, args: &[&str]) -> String {
        self.ns
            .exec("nft", args)
            .unwrap_or_else(|e| panic!("nft {args:?}: {e}"))
    }

    /// The packet count of the table's first `counter`.
    pub fn packets(&self) -> u64 {
        let out = self.nft(&["list", "table", self.family, self.name]);
        out.split("counter packets ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {out}"))
    }
}

impl Drop for NftTable<'_> {
    fn drop(&mut self) {
        let _ = self
            .ns
            .exec("nft", &["delete", "table", self.family, self.name]);
    }
}
