//! Parsing of one complete HTTP/1.1 message head (start line + header
//! fields, ending in an empty line) into what framing needs: method and
//! target or status, version, body framing headers and connection options.
//! Strict on purpose: anything the backend might read differently (bare LF,
//! obsolete line folding, conflicting lengths) is an error, because a wrong
//! message boundary would make a replay send garbage.

use super::ErrorKind;

/// Most header fields accepted in one head.
const MAX_HEADERS: usize = 128;

/// Transfer-Encoding as far as framing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Te {
    /// `chunked` is the final coding.
    Chunked,
    /// Some coding list not ending in `chunked`.
    Other,
}

/// The framing-relevant header fields of a head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    pub content_length: Option<u64>,
    pub te: Option<Te>,
    pub close: bool,
    pub keep_alive: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub method: String,
    pub target: String,
    pub http10: bool,
    pub fields: Fields,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub status: u16,
    pub http10: bool,
    pub fields: Fields,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits a head (ending in CRLF CRLF) into lines without their CRLF;
/// a bare CR or LF anywhere is an error.
fn lines(head: &[u8]) -> Result<Vec<&[u8]>, ErrorKind> {
    let body = head
        .strip_suffix(b"\r\n\r\n")
        .ok_or(ErrorKind::BadLineEnding)?;
    let pieces: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let last = pieces.len() - 1;
    let mut out = Vec::with_capacity(pieces.len());
    for (i, p) in pieces.into_iter().enumerate() {
        let line = if i < last {
            p.strip_suffix(b"\r").ok_or(ErrorKind::BadLineEnding)?
        } else {
            p
        };
        if line.contains(&b'\r') {
            return Err(ErrorKind::BadLineEnding);
        }
        out.push(line);
    }
    Ok(out)
}

fn version(v: &[u8]) -> Result<bool, ErrorKind> {
    match v {
        b"HTTP/1.1" => Ok(false),
        b"HTTP/1.0" => Ok(true),
        _ => Err(ErrorKind::UnsupportedVersion),
    }
}

fn fields(lines: &[&[u8]]) -> Result<Fields, ErrorKind> {
    if lines.len() > MAX_HEADERS {
        return Err(ErrorKind::TooManyHeaders);
    }
    let mut f = Fields::default();
    let mut te_tokens: Vec<String> = Vec::new();
    for line in lines {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(ErrorKind::ObsoleteLineFolding);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ErrorKind::BadHeader)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(ErrorKind::BadHeader);
        }
        let value = line[colon + 1..].trim_ascii();
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(ErrorKind::BadHeader);
        }
        let value = String::from_utf8_lossy(value);
        let list = || value.split(',').map(|t| t.trim().to_ascii_lowercase());
        if name.eq_ignore_ascii_case(b"content-length") {
            for v in value.split(',').map(str::trim) {
                if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ErrorKind::BadContentLength);
                }
                let n: u64 = v.parse().map_err(|_| ErrorKind::BadContentLength)?;
                if f.content_length.is_some_and(|m| m != n) {
                    return Err(ErrorKind::BadContentLength);
                }
                f.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_tokens.extend(list().filter(|t| !t.is_empty()));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in list() {
                f.close |= t == "close";
                f.keep_alive |= t == "keep-alive";
            }
        }
    }
    if !te_tokens.is_empty() {
        f.te = Some(if te_tokens.last().is_some_and(|t| t == "chunked") {
            Te::Chunked
        } else {
            Te::Other
        });
        if f.content_length.is_some() {
            return Err(ErrorKind::ConflictingFraming);
        }
    }
    Ok(f)
}

/// Parses a request head.
pub(crate) fn request(head: &[u8]) -> Result<RequestHead, ErrorKind> {
    let lines = lines(head)?;
    let mut parts = lines[0].split(|&b| b == b' ');
    let (Some(m), Some(t), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ErrorKind::BadRequestLine);
    };
    if m.is_empty() || !m.iter().all(|&b| is_tchar(b)) {
        return Err(ErrorKind::BadRequestLine);
    }
    if t.is_empty() || !t.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(ErrorKind::BadRequestLine);
    }
    let http10 = version(v)?;
    let fields = fields(&lines[1..])?;
    if fields.te == Some(Te::Other) {
        return Err(ErrorKind::BadTransferEncoding);
    }
    Ok(RequestHead {
        method: String::from_utf8_lossy(m).into_owned(),
        target: String::from_utf8_lossy(t).into_owned(),
        http10,
        fields,
    })
}

/// Parses a response head.
pub(crate) fn response(head: &[u8]) -> Result<ResponseHead, ErrorKind> {
    let lines = lines(head)?;
    let line = lines[0];
    let (v, rest) = line.split_at(line.len().min(8));
    let http10 = version(v)?;
    let code = match rest {
        [b' ', a, b, c] | [b' ', a, b, c, b' ', ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit()) =>
        {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(ErrorKind::BadStatusLine),
    };
    if !(100..=999).contains(&code) {
        return Err(ErrorKind::BadStatusLine);
    }
    Ok(ResponseHead {
        status: code,
        http10,
        fields: fields(&lines[1..])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_and_framing_fields() {
        let h = request(
            b"POST /send.php?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nConnection: Keep-Alive, Close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str(), h.http10),
            ("POST", "/send.php?x=1", false)
        );
        assert_eq!(h.fields.content_length, Some(5));
        assert!(h.fields.close && h.fields.keep_alive);
        let h = request(
            b"PUT / HTTP/1.0\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: Chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!((h.http10, h.fields.te), (true, Some(Te::Chunked)));
    }

    #[test]
    fn status_line_variants() {
        assert_eq!(
            response(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap().status,
            204
        );
        assert_eq!(response(b"HTTP/1.1 200 \r\n\r\n").unwrap().status, 200);
        assert_eq!(response(b"HTTP/1.0 304\r\n\r\n").unwrap().status, 304);
        let h = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap();
        assert_eq!(h.fields.te, Some(Te::Other));
    }

    #[test]
    fn malformed_heads_are_errors() {
        use ErrorKind::*;
        let cases: &[(&[u8], ErrorKind)] = &[
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", BadLineEnding),
            (b"GET  / HTTP/1.1\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/2.0\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", ObsoleteLineFolding),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                BadContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                BadContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                BadContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                ConflictingFraming,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                BadTransferEncoding,
            ),
            (b"GET / HTTP/1.1\r\nA: \x01\r\n\r\n", BadHeader),
        ];
        for (head, kind) in cases {
            assert_eq!(
                request(head).unwrap_err(),
                *kind,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        assert_eq!(
            response(b"HTTP/1.1 20 OK\r\n\r\n").unwrap_err(),
            BadStatusLine
        );
        assert_eq!(
            response(b"HTTP/1.1 099 x\r\n\r\n").unwrap_err(),
            BadStatusLine
        );
        assert_eq!(
            response(b"HTTX/1.1 200 OK\r\n\r\n").unwrap_err(),
            UnsupportedVersion
        );
    }
}
