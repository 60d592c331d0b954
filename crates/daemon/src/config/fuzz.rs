//! The config parsers' fuzz entry point ([`fuzz_parse`], run by
//! `fuzz/fuzz_targets/config_toml.rs` and by the property tests below):
//! any text through all three daemons' validators never panics, and every
//! error names this file and a line that exists in the text.

use super::{AgentConfig, ConfigError, LbConfig, ProxyConfig, Source};

/// Fuzz entry: `data` as a proxy, an lb and an agent config.
pub fn fuzz_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let src = Source::new("fuzz.toml", text);
    check(&src, ProxyConfig::from_source(&src).err());
    check(&src, LbConfig::from_source(&src).err());
    check(&src, AgentConfig::from_source(&src).err());
}

/// An error must point into `src`: its file, a line of the text, a key
/// that is a non-empty dotted path, and a message.
fn check(src: &Source, err: Option<ConfigError>) {
    let Some(e) = err else { return };
    assert_eq!(e.file, src.file, "{e}");
    let lines = src.text.matches('\n').count() + 1;
    if let Some(line) = e.line {
        assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
    }
    if let Some(key) = &e.key {
        assert!(
            !key.is_empty() && key.split('.').all(|k| !k.is_empty()),
            "{e}"
        );
    }
    assert!(!e.msg.is_empty(), "{e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Valid configs of every daemon and section: the seeds the mutations
    /// start from, so most mutants get past the TOML syntax into the
    /// validators.
    const SEEDS: [&str; 4] = [
        include_str!("../../tests/fixtures/config/proxy-ok.toml"),
        include_str!("../../tests/fixtures/config/proxy-l4-ok.toml"),
        include_str!("../../tests/fixtures/config/lb-ok.toml"),
        include_str!("../../tests/fixtures/config/agent-ok.toml"),
    ];

    /// Fragments a mutation inserts: TOML syntax, values of the wrong type
    /// or size, multi-byte characters.
    const FRAGMENTS: [&str; 16] = [
        "[",
        "]",
        "[[pool]]\n",
        "=",
        "\"",
        "'''",
        "\n",
        "#",
        ".",
        "x = 1\n",
        "-1",
        "99999999999999999999",
        "0-0",
        "é",
        "🦀",
        " ",
    ];

    #[test]
    fn the_seeds_are_valid_configs() {
        let src = |i: usize| Source::new("seed.toml", SEEDS[i]);
        ProxyConfig::from_source(&src(0)).unwrap();
        ProxyConfig::from_source(&src(1)).unwrap();
        LbConfig::from_source(&src(2)).unwrap();
        AgentConfig::from_source(&src(3)).unwrap();
    }

    #[test]
    fn errors_point_at_their_line_and_key() {
        let text = SEEDS[0].replace("mss_clamp = 1400", "mss_clamp = \"big\"");
        let src = Source::new("p.toml", text.as_str());
        let e = ProxyConfig::from_source(&src).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.starts_with("mss_clamp"))
            .unwrap()
            + 1;
        assert_eq!((e.line, e.key.as_deref()), (Some(line), Some("mss_clamp")));
        check(&src, Some(e));
    }

    /// One edit at a position given as a fraction of the text.
    #[derive(Clone, Debug)]
    enum Edit {
        Delete(f64, usize),
        Insert(f64, usize),
        Replace(f64, char),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (0.0..1.0, 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
            (0.0..1.0, 0..FRAGMENTS.len()).prop_map(|(at, f)| Edit::Insert(at, f)),
            (0.0..1.0, any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for e in edits {
            let len = chars.len();
            let at = |f: f64| ((len as f64 * f) as usize).min(len);
            match *e {
                Edit::Delete(f, n) => {
                    let i = at(f);
                    chars.drain(i..(i + n).min(chars.len()));
                }
                Edit::Insert(f, k) => {
                    let i = at(f);
                    chars.splice(i..i, FRAGMENTS[k].chars());
                }
                Edit::Replace(f, c) => {
                    if let Some(x) = chars.get_mut(at(f)) {
                        *x = c;
                    }
                }
            }
        }
        chars.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            fuzz_parse(&data);
        }

        #[test]
        fn random_toml_like_text_never_panics(text in "[a-z_\\[\\]=\"'.,{}# \n0-9é-]{0,200}") {
            fuzz_parse(text.as_bytes());
        }

        #[test]
        fn mutated_valid_configs_never_panic_and_errors_point_into_the_text(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec(edit(), 1..4),
        ) {
            fuzz_parse(apply(SEEDS[seed], &edits).as_bytes());
        }
    }
}
