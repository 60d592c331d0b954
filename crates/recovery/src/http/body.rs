//! Message body framing (RFC 9112 §6-7): a body of known length, a chunked
//! body with extensions and trailer fields, or a body delimited by the
//! connection's close. Incremental: [`Body::advance`] consumes bytes up to
//! the end of the body and no further, whatever the chunk boundaries.

use super::ErrorKind;

/// Longest chunk extension or trailer section accepted.
const MAX_META: usize = 64 * 1024;

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length(u64),
    /// Reading chunk-size hex digits.
    Size {
        value: u64,
        digits: u8,
    },
    /// Inside a chunk extension, until CR.
    Ext,
    /// Saw the CR ending the chunk-size line.
    SizeLf {
        last: bool,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    UntilClose,
    Done,
}

#[derive(Clone, Debug)]
pub(crate) struct Body {
    state: State,
    /// Bytes of extensions/trailers seen, bounded by `MAX_META`.
    meta: usize,
    /// Size of the chunk whose size line is being read.
    pending: u64,
}

impl Body {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size {
                value: 0,
                digits: 0,
            },
            Framing::UntilClose => State::UntilClose,
        };
        Body {
            state,
            meta: 0,
            pending: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The connection closed: ends a close-delimited body, truncates any other.
    pub fn close(&mut self) -> Result<(), ErrorKind> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(ErrorKind::Truncated),
        }
    }

    fn meta_byte(&mut self) -> Result<(), ErrorKind> {
        self.meta += 1;
        if self.meta > MAX_META {
            return Err(ErrorKind::BadChunk);
        }
        Ok(())
    }

    /// Consumes bytes of the body from the front of `data`; returns how
    /// many, or the index of the offending byte and why it is wrong.
    pub fn advance(&mut self, data: &[u8]) -> Result<usize, (usize, ErrorKind)> {
        let mut i = 0;
        self.step(data, &mut i)
            .map_err(|k| (i.saturating_sub(1), k))?;
        Ok(i)
    }

    fn step(&mut self, data: &[u8], i: &mut usize) -> Result<(), ErrorKind> {
        while *i < data.len() {
            match self.state {
                State::Done => break,
                State::UntilClose => {
                    *i = data.len();
                    break;
                }
                State::Length(n) | State::Data(n) => {
                    let take = n.min((data.len() - *i) as u64);
                    *i += take as usize;
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(left),
                        (_, 0) => State::DataCr,
                        _ => State::Data(left),
                    };
                    continue;
                }
                _ => {}
            }
            let b = data[*i];
            *i += 1;
            self.state = match self.state {
                State::Size { value, digits } => match (b as char).to_digit(16) {
                    Some(d) if digits < 15 => State::Size {
                        value: value * 16 + u64::from(d),
                        digits: digits + 1,
                    },
                    Some(_) => return Err(ErrorKind::BadChunk),
                    None if digits == 0 => return Err(ErrorKind::BadChunk),
                    None => {
                        self.pending = value;
                        match b {
                            b'\r' => State::SizeLf { last: value == 0 },
                            b';' | b' ' | b'\t' => State::Ext,
                            _ => return Err(ErrorKind::BadChunk),
                        }
                    }
                },
                State::Ext => match b {
                    b'\r' => State::SizeLf {
                        last: self.pending == 0,
                    },
                    b'\n' => return Err(ErrorKind::BadChunk),
                    _ => {
                        self.meta_byte()?;
                        State::Ext
                    }
                },
                State::SizeLf { last } => match (b, last) {
                    (b'\n', true) => State::TrailerStart,
                    (b'\n', false) => State::Data(self.pending),
                    _ => return Err(ErrorKind::BadChunk),
                },
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                State::TrailerStart => match b {
                    b'\r' => State::FinalLf,
                    b'\n' | b' ' | b'\t' => return Err(ErrorKind::BadChunk),
                    _ => {
                        self.meta_byte()?;
                        State::TrailerLine
                    }
                },
                State::TrailerLine => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err(ErrorKind::BadChunk),
                    _ => {
                        self.meta_byte()?;
                        State::TrailerLine
                    }
                },
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::FinalLf if b == b'\n' => State::Done,
                _ => return Err(ErrorKind::BadChunk),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(framing: Framing, data: &[u8]) -> Result<(usize, bool), ErrorKind> {
        let mut b = Body::new(framing);
        let n = b.advance(data).map_err(|(_, k)| k)?;
        Ok((n, b.is_done()))
    }

    #[test]
    fn length_body_stops_at_its_end() {
        assert_eq!(run(Framing::Length(3), b"abcdef"), Ok((3, true)));
        assert_eq!(run(Framing::Length(10), b"abc"), Ok((3, false)));
        assert_eq!(run(Framing::None, b"abc"), Ok((0, true)));
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let body = b"5;name=val\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\nNEXT";
        assert_eq!(run(Framing::Chunked, body), Ok((body.len() - 4, true)));
        let body = b"0\r\n\r\nGET";
        assert_eq!(run(Framing::Chunked, body), Ok((5, true)));
    }

    #[test]
    fn chunked_byte_by_byte_matches_whole() {
        let body = b"3\r\nabc\r\n0;x\r\nT: v\r\n\r\n";
        let mut b = Body::new(Framing::Chunked);
        for (i, byte) in body.iter().enumerate() {
            assert!(!b.is_done(), "done early at {i}");
            assert_eq!(b.advance(std::slice::from_ref(byte)), Ok(1));
        }
        assert!(b.is_done());
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"g\r\n"[..],
            b"\r\n",
            b"3\nabc",
            b"3\r\nabcX",
            b"0\r\nbad\nline",
            b"0\r\n\r\r",
            b"1234567890abcdef0\r\n",
        ] {
            assert_eq!(
                run(Framing::Chunked, bad),
                Err(ErrorKind::BadChunk),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn close_ends_only_close_delimited_bodies() {
        let mut b = Body::new(Framing::UntilClose);
        assert_eq!(b.advance(b"anything"), Ok(8));
        assert_eq!(
            Body::new(Framing::Chunked).advance(b"1\r\nxY"),
            Err((4, ErrorKind::BadChunk))
        );
        assert_eq!(b.close(), Ok(()));
        assert!(b.is_done());
        let mut b = Body::new(Framing::Length(5));
        b.advance(b"ab").unwrap();
        assert_eq!(b.close(), Err(ErrorKind::Truncated));
    }
}
