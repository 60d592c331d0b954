//! Bounded HTTP/1.1 request-head parser (RFC 9112): request line, `Host`,
//! `Content-Length`, `Transfer-Encoding`. It reads only the head; the body
//! stays in the byte stream that the splice relays.
//!
//! Strict where leniency enables request smuggling or ambiguity: CRLF line
//! ends only, no obsolete line folding, no whitespace before the colon,
//! exactly one `Host` for HTTP/1.1, `Content-Length` digits only (identical
//! repeats allowed), `Transfer-Encoding` must end in `chunked`, and both
//! framing headers together are refused.

use core::fmt;

/// Limits of the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Largest head (request line + headers + blank line), in bytes.
    pub max_head: usize,
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head: 8 * 1024,
            max_headers: 100,
        }
    }
}

/// The parts of a request head routing needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// The target's path (without query; `*` for asterisk-form).
    pub path: String,
    /// `Host` header (or the authority of an absolute-form target),
    /// lower-cased, port included if sent.
    pub host: Option<String>,
    /// HTTP/1.x minor version.
    pub minor: u8,
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: ..., chunked`.
    pub chunked: bool,
    /// Bytes of the head including the final blank line; the body starts
    /// there.
    pub head_len: usize,
}

impl RequestHead {
    /// `host` without its port.
    pub fn host_name(&self) -> Option<&str> {
        let h = self.host.as_deref()?;
        Some(match h.rfind(':') {
            Some(i) if h[i + 1..].bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']') => {
                &h[..i]
            }
            _ => h,
        })
    }
}

/// Result of feeding bytes to the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Complete(RequestHead),
    /// The head is not complete yet (and within limits).
    NeedMore,
}

/// Why a request head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head exceeds {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("bad request line: {0}")]
    BadRequestLine(&'static str),
    #[error("unsupported HTTP version")]
    BadVersion,
    #[error("bad header field: {0}")]
    BadHeader(&'static str),
    #[error("missing or repeated Host")]
    BadHost,
    #[error("bad Content-Length")]
    BadContentLength,
    #[error("Transfer-Encoding not ending in chunked")]
    BadTransferEncoding,
    #[error("both Content-Length and Transfer-Encoding")]
    AmbiguousFraming,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses the head at the start of `buf`.
pub fn parse_head(buf: &[u8], limits: &HeadLimits) -> Result<Parsed, HeadError> {
    let window = &buf[..buf.len().min(limits.max_head)];
    let Some(end) = find_end(window) else {
        return if buf.len() >= limits.max_head {
            Err(HeadError::TooLarge(limits.max_head))
        } else {
            Ok(Parsed::NeedMore)
        };
    };
    // Every line of the head, the last header's included, ends in CRLF.
    let mut lines = window[..end - 2]
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r\n"));
    let first = lines
        .next()
        .flatten()
        .ok_or(HeadError::BadRequestLine("bare LF"))?;
    let (method, target, minor) = request_line(first)?;
    let mut head = RequestHead {
        path: path_of(&target)?,
        host: authority_of(&target),
        method,
        target,
        minor,
        content_length: None,
        chunked: false,
        head_len: end,
    };
    let mut host_seen = 0;
    let mut te_seen = false;
    let mut count = 0;
    for line in lines {
        let line = line.ok_or(HeadError::BadHeader("bare LF"))?;
        count += 1;
        if count > limits.max_headers {
            return Err(HeadError::TooManyHeaders(limits.max_headers));
        }
        let (name, value) = header(line)?;
        if name.eq_ignore_ascii_case(b"host") {
            host_seen += 1;
            if value.is_empty() || value.iter().any(|&b| b == b' ' || b == b'\t' || b == b'/') {
                return Err(HeadError::BadHost);
            }
            // An absolute-form authority takes precedence (RFC 9112 §3.2.2).
            if head.host.is_none() || host_seen > 1 {
                head.host = Some(ascii_lower(value));
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return Err(HeadError::BadContentLength);
            }
            let n: u64 = value
                .iter()
                .fold(0, |acc, &d| acc * 10 + u64::from(d - b'0'));
            if head.content_length.is_some_and(|old| old != n) {
                return Err(HeadError::BadContentLength);
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_seen = true;
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            head.chunked = trim(last).eq_ignore_ascii_case(b"chunked");
        }
    }
    if te_seen && !head.chunked {
        return Err(HeadError::BadTransferEncoding);
    }
    if te_seen && head.content_length.is_some() {
        return Err(HeadError::AmbiguousFraming);
    }
    if host_seen > 1 || (minor >= 1 && host_seen == 0) {
        return Err(HeadError::BadHost);
    }
    Ok(Parsed::Complete(head))
}

fn request_line(line: &[u8]) -> Result<(String, String, u8), HeadError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(m), Some(t), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::BadRequestLine("not three fields"));
    };
    if m.is_empty() || !m.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::BadRequestLine("bad method"));
    }
    if t.is_empty() || !t.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(HeadError::BadRequestLine("bad target"));
    }
    let minor = match v {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        _ => return Err(HeadError::BadVersion),
    };
    Ok((ascii(m), ascii(t), minor))
}

fn path_of(target: &str) -> Result<String, HeadError> {
    let path = if target == "*" {
        "*"
    } else if target.starts_with('/') {
        target
    } else if let Some(rest) = strip_scheme(target) {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else {
        return Err(HeadError::BadRequestLine("bad target form"));
    };
    Ok(path.split(['?', '#']).next().unwrap_or(path).to_owned())
}

fn strip_scheme(target: &str) -> Option<&str> {
    let lower = target
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if lower.starts_with("http://") {
        Some(&target[7..])
    } else if lower.starts_with("https://") {
        Some(&target[8..])
    } else {
        None
    }
}

fn authority_of(target: &str) -> Option<String> {
    let rest = strip_scheme(target)?;
    let auth = rest.split(['/', '?', '#']).next()?;
    (!auth.is_empty()).then(|| auth.to_ascii_lowercase())
}

fn header(line: &[u8]) -> Result<(&[u8], &[u8]), HeadError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(HeadError::BadHeader("obsolete line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadError::BadHeader("no colon"))?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::BadHeader("bad field name"));
    }
    let value = trim(&line[colon + 1..]);
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HeadError::BadHeader("control character in value"));
    }
    Ok((name, value))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..end.max(start)]
}

/// Bytes already checked to be ASCII graphic (or tchar) become a String.
fn ascii(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn ascii_lower(b: &[u8]) -> String {
    b.iter()
        .map(|&c| char::from(c.to_ascii_lowercase()))
        .collect()
}

impl fmt::Display for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (host {:?})", self.method, self.target, self.host)
    }
}

/// Fuzz entry point: never panics; a complete head is within the limit and
/// its length within the input.
pub fn fuzz_parse(data: &[u8]) {
    let limits = HeadLimits {
        max_head: 512,
        max_headers: 16,
    };
    if let Ok(Parsed::Complete(h)) = parse_head(data, &limits) {
        assert!(h.head_len <= data.len() && h.head_len <= limits.max_head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Parsed, HeadError> {
        parse_head(s.as_bytes(), &HeadLimits::default())
    }

    fn ok(s: &str) -> RequestHead {
        match parse(s) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn typical_requests() {
        let req = "PUT /upload/a?x=1 HTTP/1.1\r\nHost: Files.Example.com:8080\r\nContent-Length: 10485760\r\n\r\nBODY";
        let h = ok(req);
        assert_eq!(h.method, "PUT");
        assert_eq!(h.path, "/upload/a");
        assert_eq!(h.host.as_deref(), Some("files.example.com:8080"));
        assert_eq!(h.host_name(), Some("files.example.com"));
        assert_eq!(h.content_length, Some(10_485_760));
        assert!(!h.chunked);
        assert_eq!(h.head_len, req.find("BODY").unwrap());
        let h = ok("POST /x HTTP/1.1\r\nhost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert!(h.chunked);
        let h = ok("GET / HTTP/1.0\r\n\r\n");
        assert_eq!((h.minor, h.host), (0, None));
        let h = ok("GET http://Proxy.Test/p/q?z HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(
            (h.path.as_str(), h.host.as_deref()),
            ("/p/q", Some("proxy.test"))
        );
        let h = ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.path, "*");
        let h =
            ok("GET / HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n");
        assert_eq!(h.host_name(), Some("[::1]"));
    }

    #[test]
    fn incomplete_needs_more() {
        assert_eq!(parse(""), Ok(Parsed::NeedMore));
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(Parsed::NeedMore));
        assert_eq!(
            parse("GET / HTTP/1.1\r\nHost: a\r\n\r"),
            Ok(Parsed::NeedMore)
        );
    }

    #[test]
    fn malformed_heads_have_reasons() {
        use HeadError::*;
        let cases: &[(&str, HeadError)] = &[
            ("GET /\r\n\r\n", BadRequestLine("not three fields")),
            ("GET  / HTTP/1.1\r\n\r\n", BadRequestLine("not three fields")),
            ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine("bad method")),
            ("GET foo HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine("bad target form")),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", BadVersion),
            ("GET / HTTP/1.1\r\n\r\n", BadHost),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", BadHost),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BadHost),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", BadHeader("bad field name")),
            ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", BadHeader("obsolete line folding")),
            ("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", BadHeader("no colon")),
            ("GET / HTTP/1.1\nHost: a\r\n\r\n", BadRequestLine("bare LF")),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", BadContentLength),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", BadContentLength),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", BadContentLength),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", BadTransferEncoding),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                AmbiguousFraming,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Err(*want), "{input:?}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let small = HeadLimits {
            max_head: 32,
            max_headers: 2,
        };
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(40));
        assert_eq!(
            parse_head(long.as_bytes(), &small),
            Err(HeadError::TooLarge(32))
        );
        // A complete head just beyond the limit is refused too.
        let head = "GET / HTTP/1.1\r\nHost: abcdefghijk\r\n\r\n";
        assert!(head.len() > 32);
        assert_eq!(
            parse_head(head.as_bytes(), &small),
            Err(HeadError::TooLarge(32))
        );
        let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        let roomy = HeadLimits {
            max_head: 1024,
            max_headers: 2,
        };
        assert_eq!(
            parse_head(many.as_bytes(), &roomy),
            Err(HeadError::TooManyHeaders(2))
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_parse(&data);
        }

        #[test]
        fn headish_bytes_never_panic(parts in proptest::collection::vec(
            prop_oneof![Just("GET "), Just("/"), Just(" HTTP/1.1"), Just("\r\n"), Just("Host:"), Just(" a"),
                Just("Content-Length: 5"), Just("Transfer-Encoding: chunked"), Just(":"), Just("\n"), Just("\r")],
            0..40)) {
            fuzz_parse(parts.concat().as_bytes());
        }

        /// A valid head is parsed identically whatever follows it, and every
        /// strict prefix of it needs more.
        #[test]
        fn prefixes_need_more(path in "/[a-z0-9/]{0,20}", len in 0u64..1_000_000, tail in proptest::collection::vec(any::<u8>(), 0..20)) {
            let head = format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {len}\r\n\r\n");
            let mut buf = head.clone().into_bytes();
            buf.extend(&tail);
            let Ok(Parsed::Complete(h)) = parse_head(&buf, &HeadLimits::default()) else { panic!() };
            prop_assert_eq!(h.head_len, head.len());
            prop_assert_eq!(h.content_length, Some(len));
            for cut in 0..head.len() {
                prop_assert_eq!(parse_head(&head.as_bytes()[..cut], &HeadLimits::default()), Ok(Parsed::NeedMore));
            }
        }
    }
}
