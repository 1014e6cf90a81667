//! ESL frames: a block of `Name: value` header lines ended by an empty line, then, if the
//! block carries `Content-Length`, exactly that many body bytes.
//!
//! Parsing is two steps, as in mini-redis: [`Frame::check`] says whether a whole frame is
//! buffered (and how long it is) without allocating, then [`Frame::parse`] builds it. Not
//! having a whole frame yet is the ordinary `Ok(None)`, not an error. Lines end in LF only,
//! as FreeSWITCH writes them; a stray CR before the LF is tolerated in header lines.

use bytes::Bytes;
use std::borrow::Cow;

use crate::error::{Error, Result};

/// Longest header block accepted. FreeSWITCH's own are a few hundred bytes.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Largest body accepted by default: `show channels as json` is ~850 bytes a channel, so
/// this leaves room for well over ten thousand channels.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Size limits applied before anything is allocated for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_header_block: usize,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_block: MAX_HEADER_BLOCK,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// Header lines in wire order. Lookups ignore ASCII case, as FreeSWITCH's own do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for Headers {
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        Headers(iter.into_iter().collect())
    }
}

/// One ESL frame as FreeSWITCH sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub headers: Headers,
    /// Present exactly when the headers carried `Content-Length`.
    pub body: Option<Bytes>,
}

/// Where a header block ends and how long the body after it is.
struct Head {
    header_len: usize,
    body_len: Option<usize>,
}

impl Frame {
    /// Whether `buf` starts with a whole frame: `Ok(Some(len))` with the frame's length in
    /// bytes, `Ok(None)` if more bytes are needed, an error if the bytes cannot be ESL.
    pub fn check(buf: &[u8], limits: &Limits) -> Result<Option<usize>> {
        let Some(head) = scan_head(buf, limits, None)? else {
            return Ok(None);
        };
        let body_len = head.body_len.unwrap_or(0);
        let total = head
            .header_len
            .checked_add(body_len)
            .ok_or(Error::BodyTooLarge {
                len: body_len,
                limit: limits.max_body,
            })?;
        if buf.len() < total {
            return Ok(None);
        }
        Ok(Some(total))
    }

    /// Builds the frame at the start of `buf`, which [`Frame::check`] has measured. The body
    /// shares `buf`'s memory.
    pub fn parse(buf: &Bytes, limits: &Limits) -> Result<Frame> {
        let mut headers = Vec::new();
        let head = scan_head(buf, limits, Some(&mut headers))?.ok_or(Error::UnexpectedFrame {
            expected: "a complete frame",
            got: None,
        })?;
        let body = match head.body_len {
            None => None,
            Some(len) => {
                let end = head.header_len.saturating_add(len);
                if end > buf.len() {
                    return Err(Error::UnexpectedFrame {
                        expected: "a complete frame",
                        got: None,
                    });
                }
                Some(buf.slice(head.header_len..end))
            }
        };
        Ok(Frame {
            headers: Headers(headers),
            body,
        })
    }

    /// Serialises the frame as FreeSWITCH would, with `Content-Length` matching the body.
    /// Used by tests and tools; the client itself only writes commands.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in self.headers.iter() {
            if name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        if let Some(body) = &self.body {
            out.extend_from_slice(format!("Content-Length: {}\n", body.len()).as_bytes());
        }
        out.push(b'\n');
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        out
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("Content-Type")
    }

    /// `Reply-Text` of a `command/reply`.
    pub fn reply_text(&self) -> Option<&str> {
        self.headers.get("Reply-Text")
    }

    /// The body as text (invalid UTF-8 replaced, never an error); empty if there is none.
    pub fn body_text(&self) -> Cow<'_, str> {
        match &self.body {
            Some(b) => String::from_utf8_lossy(b),
            None => Cow::Borrowed(""),
        }
    }
}

/// Walks the header block of `buf`. `Ok(None)` means the block is not complete yet.
fn scan_head(
    buf: &[u8],
    limits: &Limits,
    mut collect: Option<&mut Vec<(String, String)>>,
) -> Result<Option<Head>> {
    let mut pos = 0usize;
    let mut body_len = None;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if buf.len() > limits.max_header_block {
                return Err(Error::HeaderTooLarge {
                    limit: limits.max_header_block,
                });
            }
            return Ok(None);
        };
        let line_end = pos + nl + 1;
        if line_end > limits.max_header_block {
            return Err(Error::HeaderTooLarge {
                limit: limits.max_header_block,
            });
        }
        let mut line = rest.get(..nl).unwrap_or_default();
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        pos = line_end;
        if line.is_empty() {
            return Ok(Some(Head {
                header_len: pos,
                body_len,
            }));
        }
        let (name, value) = split_header(line)?;
        if body_len.is_none() && name.eq_ignore_ascii_case(b"Content-Length") {
            body_len = Some(parse_content_length(value, limits)?);
        }
        if let Some(out) = collect.as_deref_mut() {
            out.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
    }
}

/// `Name: value` -> (`Name`, `value`); spaces after the colon are not part of the value.
pub(crate) fn split_header(line: &[u8]) -> Result<(&[u8], &[u8])> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(malformed(line));
    };
    let name = line.get(..colon).unwrap_or_default().trim_ascii();
    if name.is_empty() {
        return Err(malformed(line));
    }
    let value = line.get(colon + 1..).unwrap_or_default();
    let skip = value.iter().take_while(|&&b| b == b' ').count();
    Ok((name, value.get(skip..).unwrap_or_default()))
}

fn malformed(line: &[u8]) -> Error {
    // Untrusted bytes: keep the error message short.
    let shown = line.get(..line.len().min(80)).unwrap_or_default();
    Error::MalformedHeader {
        line: String::from_utf8_lossy(shown).into_owned(),
    }
}

pub(crate) fn parse_content_length(value: &[u8], limits: &Limits) -> Result<usize> {
    let invalid = || Error::InvalidContentLength {
        value: String::from_utf8_lossy(value.get(..value.len().min(40)).unwrap_or_default())
            .into_owned(),
    };
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut len: usize = 0;
    for &d in digits {
        len = len
            .checked_mul(10)
            .and_then(|l| l.checked_add(usize::from(d - b'0')))
            .ok_or(Error::BodyTooLarge {
                len: usize::MAX,
                limit: limits.max_body,
            })?;
    }
    if len > limits.max_body {
        return Err(Error::BodyTooLarge {
            len,
            limit: limits.max_body,
        });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check(buf: &[u8]) -> Result<Option<usize>> {
        Frame::check(buf, &Limits::default())
    }

    #[test]
    fn a_header_only_frame_ends_at_the_blank_line() {
        let buf = b"Content-Type: auth/request\n\nContent-Type: x";
        assert_eq!(check(buf).unwrap(), Some(28));
        let frame = Frame::parse(&Bytes::from_static(buf), &Limits::default()).unwrap();
        assert_eq!(frame.content_type(), Some("auth/request"));
        assert_eq!(frame.body, None);
    }

    #[test]
    fn a_body_is_exactly_content_length_bytes() {
        let buf = b"Content-Type: api/response\nContent-Length: 5\n\nfalseNEXT";
        assert_eq!(check(buf).unwrap(), Some(51));
        let frame = Frame::parse(&Bytes::from_static(buf), &Limits::default()).unwrap();
        assert_eq!(frame.body.as_deref(), Some(&b"false"[..]));
    }

    #[test]
    fn missing_bytes_are_incomplete_not_an_error() {
        let full = b"Content-Type: api/response\nContent-Length: 10\n\n\n0 total.\n";
        for cut in 0..full.len() {
            assert_eq!(check(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(check(full).unwrap(), Some(full.len()));
    }

    #[test]
    fn values_keep_everything_after_the_first_colon() {
        let buf = Bytes::from_static(b"Reply-Text: +OK Job-UUID: abc\nEmpty:\n\n");
        let frame = Frame::parse(&buf, &Limits::default()).unwrap();
        assert_eq!(frame.reply_text(), Some("+OK Job-UUID: abc"));
        assert_eq!(frame.headers.get("empty"), Some(""));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(
            check(b"no colon here\n\n"),
            Err(Error::MalformedHeader { .. })
        ));
        assert!(matches!(
            check(b": no name\n\n"),
            Err(Error::MalformedHeader { .. })
        ));
        assert!(matches!(
            check(b"Content-Length: -3\n\n"),
            Err(Error::InvalidContentLength { .. })
        ));
        assert!(matches!(
            check(b"Content-Length: 99999999999999999999999999\n\n"),
            Err(Error::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn oversized_input_is_refused_before_it_is_buffered() {
        let limits = Limits {
            max_header_block: 64,
            max_body: 10,
        };
        let long = vec![b'a'; 100];
        assert!(matches!(
            Frame::check(&long, &limits),
            Err(Error::HeaderTooLarge { .. })
        ));
        assert!(matches!(
            Frame::check(b"Content-Length: 11\n\n", &limits),
            Err(Error::BodyTooLarge { len: 11, .. })
        ));
    }

    #[test]
    fn encode_then_check_and_parse_round_trips() {
        let mut headers = Headers::new();
        headers.push("Content-Type", "api/response");
        let frame = Frame {
            headers,
            body: Some(Bytes::from_static(b"\n20 total.\n")),
        };
        let bytes = Bytes::from(frame.encode());
        assert_eq!(
            &bytes[..],
            b"Content-Type: api/response\nContent-Length: 11\n\n\n20 total.\n"
        );
        assert_eq!(check(&bytes).unwrap(), Some(bytes.len()));
        let back = Frame::parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(back.body, frame.body);
        assert_eq!(back.content_type(), Some("api/response"));
    }
}
