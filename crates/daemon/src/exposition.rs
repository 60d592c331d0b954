//! A strict reader of the Prometheus text exposition format (version
//! 0.0.4), written from the format's description to check what the
//! daemons' `/metrics` endpoints serve: metric and label names, label value
//! escapes, `# HELP`/`# TYPE` before a family's samples and at most once,
//! families contiguous, no duplicate series, numeric values.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: samples in order, and each family's type.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
}

impl Exposition {
    /// The value of `name` with exactly `labels`, if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("'{s}' is not a number")),
    }
}

/// `{a="b",c="d"}` at the start of `s`; the labels and the rest.
fn labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut out = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("no '{'")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name '{name}'"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => v.push('\\'),
                    Some((_, '"')) => v.push('"'),
                    Some((_, 'n')) => v.push('\n'),
                    o => return Err(format!("bad escape {o:?} in a label value")),
                },
                Some((_, '\n')) => return Err("newline in a label value".into()),
                Some((_, c)) => v.push(c),
            }
        };
        if out.insert(name.to_string(), v).is_some() {
            return Err(format!("label '{name}' twice"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ','".into());
        }
    }
}

/// A HELP text: only `\\` and `\n` are escapes.
fn unescape_help(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                o => return Err(format!("bad escape {o:?} in HELP")),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Parses `text`; the error names the line.
pub fn parse(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line does not end with a newline".into());
    }
    let mut e = Exposition::default();
    let mut series = BTreeSet::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    // A family starts at its first HELP, TYPE or sample line.
    let mut enter = |name: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() != Some(name) {
            if let Some(c) = current.take() {
                done.insert(c);
            }
            if done.contains(name) {
                return Err(format!("family {name} is not contiguous"));
            }
            *current = Some(name.to_string());
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut f = c.trim_start().splitn(3, ' ');
            let (kw, name, rest) = (f.next(), f.next(), f.next().unwrap_or(""));
            match (kw, name) {
                (Some("HELP"), Some(n)) => {
                    if !is_metric_name(n) {
                        return Err(at(format!("bad metric name '{n}'")));
                    }
                    enter(n, &mut current).map_err(at)?;
                    let text = unescape_help(rest).map_err(at)?;
                    if e.help.insert(n.into(), text).is_some() {
                        return Err(at("second HELP".into()));
                    }
                }
                (Some("TYPE"), Some(n)) => {
                    if !is_metric_name(n) {
                        return Err(at(format!("bad metric name '{n}'")));
                    }
                    enter(n, &mut current).map_err(at)?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest) {
                        return Err(at(format!("unknown type '{rest}'")));
                    }
                    if e.samples.iter().any(|s| s.name == n) {
                        return Err(at("TYPE after the family's samples".into()));
                    }
                    if e.types.insert(n.into(), rest.into()).is_some() {
                        return Err(at("second TYPE".into()));
                    }
                }
                _ => {} // a plain comment
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at(format!("bad metric name '{name}'")));
        }
        enter(name, &mut current).map_err(at)?;
        let (labels, rest) = if line[name_end..].starts_with('{') {
            labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut f = rest.split(' ').filter(|w| !w.is_empty());
        let v = value(f.next().ok_or_else(|| at("no value".into()))?).map_err(at)?;
        if let Some(ts) = f.next() {
            ts.parse::<i64>()
                .map_err(|_| at(format!("bad timestamp '{ts}'")))?;
        }
        if f.next().is_some() {
            return Err(at("text after the timestamp".into()));
        }
        if !series.insert((name.to_string(), labels.clone())) {
            return Err(at("duplicate series".into()));
        }
        e.samples.push(Sample {
            name: name.into(),
            labels,
            value: v,
        });
    }
    Ok(e)
}

/// Fuzz entry: any bytes, never a panic.
pub fn fuzz_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;
    use proptest::prelude::*;

    #[test]
    fn reads_a_valid_exposition() {
        let e = parse(
            "# HELP a_total Things.\n# TYPE a_total counter\n\
             a_total{r=\"x\\\"y\",s=\"\\\\\\n\"} 3\na_total{r=\"z\",} 4 1700000000000\n\
             # a comment\n\n# TYPE g gauge\ng -2.5\ng{k=\"v\"} +Inf\n",
        )
        .unwrap();
        assert_eq!(e.get("a_total", &[("r", "x\"y"), ("s", "\\\n")]), Some(3.0));
        assert_eq!(e.get("a_total", &[("r", "z")]), Some(4.0));
        assert_eq!(e.get("g", &[]), Some(-2.5));
        assert_eq!(e.get("g", &[("k", "v")]), Some(f64::INFINITY));
        assert_eq!(e.types["a_total"], "counter");
        assert_eq!(e.help["a_total"], "Things.");
        let e = parse("# HELP h a\\\\b\\nc\n").unwrap();
        assert_eq!(e.help["h"], "a\\b\nc");
    }

    #[test]
    fn refuses_what_the_format_forbids() {
        let bad = [
            ("x 1", "newline"),
            ("1x 1\n", "bad metric name"),
            ("x{1a=\"v\"} 1\n", "bad label name"),
            ("x{a=v} 1\n", "not quoted"),
            ("x{a=\"v} 1\n", "unterminated"),
            ("x{a=\"\\t\"} 1\n", "bad escape"),
            ("x{a=\"1\",a=\"2\"} 1\n", "twice"),
            ("x{a=\"1\" b=\"2\"} 1\n", "separated"),
            ("x one\n", "not a number"),
            ("x\n", "no value"),
            ("x 1 2 3\n", "after the timestamp"),
            ("x 1 1.5\n", "bad timestamp"),
            ("x 1\nx 2\n", "duplicate series"),
            ("x 1\ny 1\nx{a=\"b\"} 1\n", "not contiguous"),
            ("x 1\n# TYPE x gauge\n", "TYPE after"),
            ("# TYPE x gauge\n# TYPE x gauge\n", "second TYPE"),
            ("# TYPE x meter\n", "unknown type"),
            ("# HELP x a\n# HELP x b\n", "second HELP"),
            ("# HELP x a \\ b\n", "bad escape"),
        ];
        for (text, why) in bad {
            let e = parse(text).expect_err(text);
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_registry_renders_what_the_reader_accepts() {
        let r = Registry::new();
        r.counter("ftsplice_a_total", "A \\ help", &[("why", "q\"uote\\d\nx")])
            .add(5);
        r.gauge("ftsplice_g", "G", &[]).set(-3);
        let e = parse(&r.render()).unwrap();
        assert_eq!(
            e.get("ftsplice_a_total", &[("why", "q\"uote\\d\nx")]),
            Some(5.0)
        );
        assert_eq!(e.help["ftsplice_a_total"], "A \\ help");
        assert_eq!(e.get("ftsplice_g", &[]), Some(-3.0));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            fuzz_parse(&data);
        }

        #[test]
        fn rendered_registries_round_trip(
            series in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,6}", 0u64..1000), 1..8)
        ) {
            let r = Registry::new();
            for (name, label, v) in &series {
                r.counter(&format!("f_{name}_total"), "h", &[("l", label)]).add(*v);
            }
            let e = parse(&r.render()).unwrap();
            for (name, label, _) in &series {
                let got = e.get(&format!("f_{name}_total"), &[("l", label)]);
                prop_assert!(got.is_some());
            }
        }
    }
}
