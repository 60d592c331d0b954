//! What all configs share: the source text (for line numbers), the error
//! type, and validators for addresses, ranges, keys and durations that
//! report the offending key and line.

use core::fmt;
use core::ops::{Range, RangeInclusive};
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// A configuration error: which file, line and key, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; `None` when the error is about the file as a whole.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `replication.psk`.
    pub key: Option<String>,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key '{key}'")?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for ConfigError {}

/// A config file's name and text; turns byte spans into line numbers.
#[derive(Clone, Debug)]
pub struct Source {
    pub file: String,
    pub text: String,
}

impl Source {
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            file: file.into(),
            text: text.into(),
        }
    }

    /// Reads `path`; the error names the file.
    pub fn read(path: &Path) -> Result<Source, ConfigError> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Source { file, text }),
            Err(e) => Err(ConfigError {
                file,
                line: None,
                key: None,
                msg: format!("cannot read: {e}"),
            }),
        }
    }

    /// 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// An error about the value at `span`, under `key`.
    pub fn err(&self, span: Range<usize>, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: Some(self.line_of(span.start)),
            key: Some(key.to_string()),
            msg: msg.into(),
        }
    }

    /// An error about a key that is missing from the file.
    pub fn missing(&self, key: &str) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: None,
            key: Some(key.to_string()),
            msg: "missing (required)".into(),
        }
    }

    /// Parses the text into the raw (spanned) form, mapping toml's errors to
    /// a [`ConfigError`] naming line and, where the span covers one, the key.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ConfigError> {
        toml::from_str::<T>(&self.text).map_err(|e| self.toml_error(&e))
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let msg = e.message().trim().to_string();
        let Some(span) = e.span() else {
            return ConfigError {
                file: self.file.clone(),
                line: None,
                key: None,
                msg,
            };
        };
        if msg.starts_with("missing field") {
            // The span is the table missing the field: name the field under
            // the table's header; the root table has no useful line.
            let table = self.header_at(span.start, true);
            let field = backticked(&msg);
            return ConfigError {
                file: self.file.clone(),
                line: table.as_ref().map(|_| self.line_of(span.start)),
                key: field.map(|f| join_key(table.as_deref(), &f)),
                msg: "missing (required)".into(),
            };
        }
        ConfigError {
            file: self.file.clone(),
            line: Some(self.line_of(span.start)),
            key: self.key_at(span),
            msg,
        }
    }

    /// The dotted key whose key or value starts at `span`: the bare key
    /// before `=` on that line (or the spanned text itself), under the
    /// nearest table header above it.
    fn key_at(&self, span: Range<usize>) -> Option<String> {
        let text = &self.text;
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let before = text.get(line_start..start)?;
        let local = match before.split_once('=') {
            Some((k, _)) => k.trim(),
            None => text.get(span)?.trim(),
        };
        let local = local.trim_matches('"');
        if !dotted(local) {
            return None;
        }
        let table = self.header_at(line_start, false);
        if table.as_deref().is_some_and(|t| !dotted(t)) {
            // A malformed header above: the key's table is unknown.
            return None;
        }
        Some(join_key(table.as_deref(), local))
    }

    /// The table header (`[a.b]` / `[[a.b]]`) on the line at `offset` (when
    /// `on_line`) or the nearest one above it.
    fn header_at(&self, offset: usize, on_line: bool) -> Option<String> {
        let upto = if on_line {
            let end = self.text[offset.min(self.text.len())..]
                .find('\n')
                .map_or(self.text.len(), |i| offset + i);
            &self.text[..end]
        } else {
            &self.text[..offset.min(self.text.len())]
        };
        let line = upto
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('['))?;
        if on_line && upto.lines().last().is_none_or(|l| l != line) {
            return None;
        }
        let name = line.trim().trim_start_matches('[');
        let name = name.split(']').next()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    }
}

/// A dotted path of bare keys (`a.b-c.d_e`): no empty part, nothing a
/// bare TOML key cannot hold. Text that is not one names no key.
fn dotted(k: &str) -> bool {
    k.split('.').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

fn join_key(table: Option<&str>, key: &str) -> String {
    match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    }
}

/// The first `` `name` `` in a serde message.
fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

/// Log output shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[log]` of every daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` env-filter directive, e.g. `info,ftsplice_daemon=debug`.
    pub filter: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub format: Option<Spanned<String>>,
    pub filter: Option<String>,
}

impl RawLog {
    pub fn validate(&self, src: &Source) -> Result<LogConfig, ConfigError> {
        let format = match &self.format {
            None => LogFormat::Text,
            Some(f) => match f.get_ref().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(src.err(
                        f.span(),
                        "log.format",
                        format!("'{other}' is not one of 'text', 'json'"),
                    ))
                }
            },
        };
        Ok(LogConfig {
            format,
            filter: self.filter.clone(),
        })
    }
}

/// `"a.b.c.d:port"`.
pub(crate) fn sock_addr(
    src: &Source,
    v: &Spanned<String>,
    key: &str,
) -> Result<SocketAddrV4, ConfigError> {
    v.get_ref().parse::<SocketAddrV4>().map_err(|_| {
        src.err(
            v.span(),
            key,
            format!("'{}' is not an IPv4 address:port", v.get_ref()),
        )
    })
}

/// Like [`sock_addr`] but the port must be non-zero.
pub(crate) fn service_addr(
    src: &Source,
    v: &Spanned<String>,
    key: &str,
) -> Result<SocketAddrV4, ConfigError> {
    let a = sock_addr(src, v, key)?;
    if a.port() == 0 {
        return Err(src.err(v.span(), key, "port 0 is not a usable port"));
    }
    Ok(a)
}

/// `"a.b.c.d"`.
pub(crate) fn ip_addr(
    src: &Source,
    v: &Spanned<String>,
    key: &str,
) -> Result<Ipv4Addr, ConfigError> {
    v.get_ref().parse::<Ipv4Addr>().map_err(|_| {
        src.err(
            v.span(),
            key,
            format!("'{}' is not an IPv4 address", v.get_ref()),
        )
    })
}

/// `"first-last"` (inclusive), non-empty, ports > 0.
pub(crate) fn port_range(
    src: &Source,
    v: &Spanned<String>,
    key: &str,
) -> Result<RangeInclusive<u16>, ConfigError> {
    let text = v.get_ref();
    let bad = || {
        src.err(
            v.span(),
            key,
            format!("'{text}' is not a port range FIRST-LAST"),
        )
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(src.err(v.span(), key, format!("range {a}-{b} is empty")));
    }
    if a == 0 {
        return Err(src.err(v.span(), key, "port 0 is not a usable port"));
    }
    Ok(a..=b)
}

/// An integer within `lo..=hi`.
pub(crate) fn within<T>(
    src: &Source,
    v: &Spanned<T>,
    key: &str,
    lo: T,
    hi: T,
) -> Result<T, ConfigError>
where
    T: Copy + PartialOrd + fmt::Display,
{
    let x = *v.get_ref();
    if x < lo || x > hi {
        return Err(src.err(v.span(), key, format!("{x} is outside {lo}..={hi}")));
    }
    Ok(x)
}

/// Milliseconds within `lo..=hi`, as a duration.
pub(crate) fn millis(
    src: &Source,
    v: &Spanned<u64>,
    key: &str,
    lo: u64,
    hi: u64,
) -> Result<Duration, ConfigError> {
    within(src, v, key, lo, hi).map(Duration::from_millis)
}

/// A 32-byte pre-shared key given as 64 hex digits.
pub(crate) fn psk_hex(
    src: &Source,
    v: &Spanned<String>,
    key: &str,
) -> Result<[u8; 32], ConfigError> {
    parse_hex32(v.get_ref().trim())
        .ok_or_else(|| src.err(v.span(), key, "must be 64 hex digits (a 32-byte key)"))
}

pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// A network interface name as the kernel accepts it.
pub(crate) fn ifname(src: &Source, v: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
    let n = v.get_ref();
    if n.is_empty() || n.len() > 15 || n.contains(['/', ' ', '\0']) {
        return Err(src.err(
            v.span(),
            key,
            format!("'{n}' is not an interface name (1-15 chars, no '/' or spaces)"),
        ));
    }
    Ok(n.clone())
}

/// One interface name or a list of them (`interface = "e0"` or
/// `interface = ["e0", "e1"]`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Validates `interface`: one name or a non-empty list of distinct names.
pub(crate) fn ifnames(
    src: &Source,
    v: &Spanned<OneOrMany>,
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    // Spans do not survive an untagged enum: errors point at the value.
    let one = |n: &String| ifname(src, &Spanned::new(v.span(), n.clone()), key);
    let names = match v.get_ref() {
        OneOrMany::One(n) => vec![one(n)?],
        OneOrMany::Many(list) => {
            let mut out: Vec<String> = Vec::new();
            for n in list {
                let name = one(n)?;
                if out.contains(&name) {
                    return Err(src.err(v.span(), key, format!("'{name}' is listed twice")));
                }
                out.push(name);
            }
            out
        }
    };
    if names.is_empty() {
        return Err(src.err(v.span(), key, "needs at least one interface"));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let s = Source::new("x.toml", "a = 1\nb = 2\n\nc = 3\n");
        assert_eq!(s.line_of(0), 1);
        assert_eq!(s.line_of(6), 2);
        assert_eq!(s.line_of(13), 4);
        assert_eq!(s.line_of(10_000), 5);
    }

    #[test]
    fn hex_keys() {
        let k = parse_hex32(&"0f".repeat(32)).unwrap();
        assert_eq!(k, [0x0f; 32]);
        assert!(parse_hex32(&"0f".repeat(31)).is_none());
        assert!(parse_hex32(&"zz".repeat(32)).is_none());
    }

    #[test]
    fn syntax_errors_name_only_well_formed_keys() {
        #[derive(Debug, serde::Deserialize)]
        struct Any {}
        let err = |text: &str| Source::new("x.toml", text).parse::<Any>().unwrap_err();
        // Found by the config fuzz property: "." before the `=` is no key.
        let e = err(".==");
        assert_eq!((e.line, e.key.as_deref()), (Some(1), None), "{e}");
        // A header that is no dotted key leaves the table, so the key, unknown.
        let e = err("[a..b]\nx = = 1\n");
        assert_eq!(e.key, None, "{e}");
        let e = err("[pool]\nport = = 1\n");
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("pool.port")),
            "{e}"
        );
    }

    #[test]
    fn display_names_file_line_and_key() {
        let e = ConfigError {
            file: "proxy.toml".into(),
            line: Some(7),
            key: Some("ssa_ports".into()),
            msg: "range 40000-39000 is empty".into(),
        };
        assert_eq!(
            e.to_string(),
            "proxy.toml: line 7: key 'ssa_ports': range 40000-39000 is empty"
        );
    }
}
