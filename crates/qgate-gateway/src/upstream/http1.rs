//! HTTP/1.1 for chat calls, without I/O: the request head as it goes out, the response
//! head (parsed by `httparse`, the parser hyper itself uses) and the body's framing.
//!
//! Why not hyper's client connection: per upstream connection it keeps a request channel
//! (a 32-slot block, ~9 KB), an 8 KiB write buffer and its read buffer for the
//! connection's life, and it hands each chunk of the body through a channel of its own.
//! Per held stream that was ~21 KB of the ~57 KB of heap, and the largest part of what
//! kept a stream over 32 KB of resident memory (docs/benchmarks.md, eleventh round). A
//! chat call is one shape — a `POST` with a known body, a response read to its end — so
//! the exchange is small enough to own: the connection (`pool.rs`) keeps no buffer while
//! it waits, reads into the stack, and hands body bytes straight to the event decoder.

use bytes::Bytes;
use http::Uri;
use std::io::Write as _;

/// The largest response head read. Amazon Q's are under 1 KiB; a larger one is an error
/// in the API's shape, never a hang (`tests/it/upstream_head.rs`).
pub const MAX_HEAD: usize = 4096;

/// Headers a response head may have; more is an error (httparse needs the room up front).
const MAX_HEADERS: usize = 64;

/// What went wrong in an exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the upstream response head is larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("the upstream response head is malformed: {0}")]
    BadHead(String),
    #[error("the upstream body's chunked framing is malformed")]
    BadChunk,
    #[error("the upstream closed the connection before the response ended")]
    Truncated,
}

/// A chat call as it goes out: where to, the request head, and the body.
pub struct ChatRequest {
    pub uri: Uri,
    /// Holds the access token: never printed (no `Debug`).
    head: Vec<u8>,
    pub body: Bytes,
}

impl ChatRequest {
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

/// Writes a `POST` request head in origin form: the path alone on the request line, the
/// host (its port only when not the scheme's default) in `Host`, then the headers, then
/// `content-length`. User information in the URL never goes out. Written straight into
/// the bytes that go out: no header map, no parsing of constant values per call.
pub struct RequestHead {
    uri: Uri,
    buf: Vec<u8>,
}

impl RequestHead {
    /// `capacity`: room for the headers to come.
    pub fn post(uri: Uri, capacity: usize) -> Result<RequestHead, ProtocolError> {
        let authority = uri
            .authority()
            .ok_or_else(|| ProtocolError::BadHead("an upstream URL without a host".into()))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut buf = Vec::with_capacity(64 + path.len() + authority.as_str().len() + capacity);
        buf.extend_from_slice(b"POST ");
        buf.extend_from_slice(path.as_bytes());
        buf.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        buf.extend_from_slice(authority.host().as_bytes());
        if let Some(port) = authority.port_u16()
            && port != default_port
        {
            // Writing to a `Vec` cannot fail.
            let _ = write!(buf, ":{port}");
        }
        buf.extend_from_slice(b"\r\n");
        Ok(RequestHead { uri, buf })
    }

    /// Adds a header whose value is a constant of this program.
    pub fn constant(&mut self, name: &str, value: &str) {
        self.put(name, &[value.as_bytes()]);
    }

    /// Adds a header whose value, written from `parts`, comes from elsewhere (a token):
    /// refused if it could end the line early or is not a header value.
    pub fn value(&mut self, name: &str, parts: &[&[u8]]) -> Result<(), ProtocolError> {
        let valid = |b: &u8| *b == b'\t' || (*b >= 0x20 && *b != 0x7f);
        if !parts.iter().all(|p| p.iter().all(valid)) {
            return Err(ProtocolError::BadHead(format!(
                "the {name} header's value has control characters"
            )));
        }
        self.put(name, parts);
        Ok(())
    }

    fn put(&mut self, name: &str, parts: &[&[u8]]) {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The request, with `content-length` for `body`.
    pub fn finish(mut self, body: Bytes) -> ChatRequest {
        let _ = write!(self.buf, "content-length: {}\r\n\r\n", body.len());
        ChatRequest {
            uri: self.uri,
            head: self.buf,
            body,
        }
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection (no length, not chunked).
    UntilClose,
}

/// A final response head: what the gateway reads of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The connection may carry another request once this body has been read.
    pub keep_alive: bool,
    pub error_type: Option<String>,
    pub retry_after: Option<String>,
}

/// The outcome of parsing the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A final head of this many bytes.
    Head(Head, usize),
    /// An interim (1xx) head of this many bytes, to be skipped.
    Interim(usize),
    /// More bytes are needed.
    Partial,
}

/// Parses a response head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Parsed, ProtocolError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(ProtocolError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ProtocolError::BadHead(format!(
                "more than {MAX_HEADERS} headers"
            )));
        }
        Err(e) => return Err(ProtocolError::BadHead(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(ProtocolError::HeadTooLarge);
    }
    let status = resp.code.unwrap_or(0);
    if status == 101 {
        return Err(ProtocolError::BadHead("an unasked protocol switch".into()));
    }
    if (100..200).contains(&status) {
        return Ok(Parsed::Interim(len));
    }
    let mut keep_alive = resp.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoded = false;
    let mut error_type = None;
    let mut retry_after = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).unwrap_or("").trim();
            let n: u64 = text
                .parse()
                .map_err(|_| ProtocolError::BadHead("an invalid content-length".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(ProtocolError::BadHead("conflicting content-lengths".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoded = true;
            // Chunked only when it is the last coding applied.
            chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                keep_alive = false;
            }
        } else if name.eq_ignore_ascii_case("x-amzn-errortype") {
            error_type = text_value(h.value);
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = text_value(h.value);
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Length(0)
    } else if transfer_encoded {
        // A length beside a transfer coding is ignored (RFC 9112 §6.3), and such a
        // message is not trusted to leave the connection in a known state.
        if length.is_some() || !chunked {
            keep_alive = false;
        }
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(Parsed::Head(
        Head {
            status,
            framing,
            keep_alive,
            error_type,
            retry_after,
        },
        len,
    ))
}

fn text_value(v: &[u8]) -> Option<String> {
    std::str::from_utf8(v).ok().map(str::to_owned)
}

fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

fn last_token(v: &[u8]) -> &[u8] {
    tokens(v).last().unwrap_or(b"")
}

fn has_token(v: &[u8], token: &[u8]) -> bool {
    tokens(v).any(|t| t.eq_ignore_ascii_case(token))
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk size: its value so far and how many hex digits it had.
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size, skipping extensions up to the CR.
    Extension {
        size: u64,
    },
    /// The LF after a size line.
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the empty line that ends the message).
    TrailerStart,
    /// Inside a trailer line, up to its LF.
    Trailer,
    /// The LF of the final empty line.
    EndLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Takes a response body's bytes as they arrive and hands on its content, framing
/// removed. Holds no buffer: a size line split between two reads is kept as state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size { size: 0, digits: 0 }),
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// The whole body has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, handing content to `out`; returns how many bytes of `input` were
    /// the body's (all of them unless the body ended inside it).
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<usize, ProtocolError> {
        let mut at = 0;
        while at < input.len() {
            // The common case whole: a size line read at once rather than byte by byte.
            if self.state == State::Chunked(Chunk::Size { size: 0, digits: 0 })
                && let Some((size, len)) = size_line(&input[at..])
            {
                at += len;
                self.state = if size == 0 {
                    State::Chunked(Chunk::TrailerStart)
                } else {
                    State::Chunked(Chunk::Data { left: size })
                };
                continue;
            }
            match &mut self.state {
                State::Done => break,
                State::UntilClose => {
                    out(&input[at..]);
                    at = input.len();
                }
                State::Length(left) => {
                    at += take(left, &input[at..], out);
                    if *left == 0 {
                        self.state = State::Done;
                    }
                }
                State::Chunked(Chunk::Data { left }) => {
                    at += take(left, &input[at..], out);
                    if *left == 0 {
                        self.state = State::Chunked(Chunk::DataCr);
                    }
                }
                State::Chunked(Chunk::DataCr) if input[at..].starts_with(b"\r\n") => {
                    at += 2;
                    self.state = State::Chunked(Chunk::Size { size: 0, digits: 0 });
                }
                State::Chunked(chunk) => {
                    self.state = match step(*chunk, input[at])? {
                        Some(next) => State::Chunked(next),
                        None => State::Done,
                    };
                    at += 1;
                }
            }
        }
        Ok(at)
    }

    /// The server closed the connection: fine only for a body delimited by the close.
    pub fn closed(&mut self) -> Result<(), ProtocolError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            State::Length(_) | State::Chunked(_) => Err(ProtocolError::Truncated),
        }
    }
}

/// A whole size line without extensions (`1a\r\n`) at the start of `input`: its size and
/// length. `None` for anything else — split, extended or malformed — which the byte-wise
/// path then reads (or rejects).
fn size_line(input: &[u8]) -> Option<(u64, usize)> {
    let digits = input
        .iter()
        .take(17)
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if digits == 0 || digits > 16 || input.get(digits..digits + 2)? != b"\r\n" {
        return None;
    }
    let size = input[..digits].iter().fold(0u64, |size, b| {
        size << 4 | (*b as char).to_digit(16).unwrap_or(0) as u64
    });
    Some((size, digits + 2))
}

/// Hands on as much of `input` as the `left` bytes of content allow; returns how much.
fn take(left: &mut u64, input: &[u8], out: &mut impl FnMut(&[u8])) -> usize {
    let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
    out(&input[..n]);
    *left -= n as u64;
    n
}

/// The chunked decoder after one framing byte; `None` once the message has ended.
fn step(chunk: Chunk, b: u8) -> Result<Option<Chunk>, ProtocolError> {
    Ok(Some(match chunk {
        Chunk::Size { size, digits } => match b {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                // 16 hex digits fill a u64; more would overflow.
                if digits >= 16 {
                    return Err(ProtocolError::BadChunk);
                }
                let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                Chunk::Size {
                    size: size << 4 | d,
                    digits: digits + 1,
                }
            }
            b';' | b' ' | b'\t' if digits > 0 => Chunk::Extension { size },
            b'\r' if digits > 0 => Chunk::SizeLf { size },
            _ => return Err(ProtocolError::BadChunk),
        },
        Chunk::Extension { size } => match b {
            b'\r' => Chunk::SizeLf { size },
            b'\n' => return Err(ProtocolError::BadChunk),
            _ => Chunk::Extension { size },
        },
        Chunk::SizeLf { size } => match b {
            b'\n' if size == 0 => Chunk::TrailerStart,
            b'\n' => Chunk::Data { left: size },
            _ => return Err(ProtocolError::BadChunk),
        },
        // Not reached: `decode` takes data in bulk.
        Chunk::Data { .. } => chunk,
        Chunk::DataCr => match b {
            b'\r' => Chunk::DataLf,
            _ => return Err(ProtocolError::BadChunk),
        },
        Chunk::DataLf => match b {
            b'\n' => Chunk::Size { size: 0, digits: 0 },
            _ => return Err(ProtocolError::BadChunk),
        },
        Chunk::TrailerStart => match b {
            b'\r' => Chunk::EndLf,
            b'\n' => return Err(ProtocolError::BadChunk),
            _ => Chunk::Trailer,
        },
        Chunk::Trailer => match b {
            b'\n' => Chunk::TrailerStart,
            _ => Chunk::Trailer,
        },
        Chunk::EndLf => match b {
            b'\n' => return Ok(None),
            _ => return Err(ProtocolError::BadChunk),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` handed over in pieces of `piece` bytes; returns the content, the
    /// bytes left after the body, and whether the body ended.
    fn decode_in(
        framing: Framing,
        input: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, usize, bool), ProtocolError> {
        let mut d = BodyDecoder::new(framing);
        let mut content = Vec::new();
        let mut used = 0;
        for part in input.chunks(piece) {
            let n = d.decode(part, &mut |b| content.extend_from_slice(b))?;
            used += n;
            if n < part.len() {
                break;
            }
        }
        Ok((content, input.len() - used, d.is_done()))
    }

    #[test]
    fn chunked_bodies_decode_alike_however_the_reads_split_them() {
        let body =
            b"5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for piece in 1..=body.len() {
            let (content, left, done) = decode_in(Framing::Chunked, body, piece).unwrap();
            assert_eq!(content, b"hello 0123456789", "piece {piece}");
            assert!(done, "piece {piece}");
            assert_eq!(
                left, 4,
                "the next response's bytes are not the body's (piece {piece})"
            );
        }
    }

    #[test]
    fn a_chunked_body_ends_only_at_its_last_chunk() {
        let (content, _, done) = decode_in(Framing::Chunked, b"3\r\nabc\r\n", 64).unwrap();
        assert_eq!(content, b"abc");
        assert!(!done);
        let mut d = BodyDecoder::new(Framing::Chunked);
        d.decode(b"3\r\nab", &mut |_| {}).unwrap();
        assert_eq!(d.closed(), Err(ProtocolError::Truncated));
    }

    #[test]
    fn malformed_chunk_framing_is_an_error() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"3\nabc",
            b"3\r\nabcX",
            b"3\r\nabc\rX",
            b"11111111111111111\r\n",
            b"0\r\n\n",
            b"3;ext\n",
        ] {
            assert_eq!(
                decode_in(Framing::Chunked, bad, 64).map(|_| ()),
                Err(ProtocolError::BadChunk),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // the largest size a u64 holds is read, not rejected
        let mut d = BodyDecoder::new(Framing::Chunked);
        d.decode(b"ffffffffffffffff\r\nab", &mut |_| {}).unwrap();
        assert!(!d.is_done());
    }

    #[test]
    fn length_and_close_delimited_bodies() {
        let (content, left, done) = decode_in(Framing::Length(5), b"helloHTTP", 2).unwrap();
        assert_eq!((content.as_slice(), left, done), (&b"hello"[..], 4, true));
        assert!(BodyDecoder::new(Framing::Length(0)).is_done());
        let mut d = BodyDecoder::new(Framing::Length(5));
        d.decode(b"hel", &mut |_| {}).unwrap();
        assert_eq!(d.closed(), Err(ProtocolError::Truncated));
        let mut content = Vec::new();
        let mut d = BodyDecoder::new(Framing::UntilClose);
        d.decode(b"abc", &mut |b| content.extend_from_slice(b))
            .unwrap();
        assert!(!d.is_done());
        assert_eq!(d.closed(), Ok(()));
        assert!(d.is_done());
        assert_eq!(content, b"abc");
    }

    fn head(text: &str) -> Head {
        match parse_head(text.as_bytes()).unwrap() {
            Parsed::Head(head, len) => {
                assert_eq!(len, text.len());
                head
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_heads_give_status_framing_reuse_and_the_error_headers() {
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Chunked, true)
        );
        let h = head(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 12\r\nx-amzn-ErrorType: ThrottlingException:http://x\r\nRetry-After: 3\r\nConnection: keep-alive, close\r\n\r\n",
        );
        assert_eq!(h.status, 429);
        assert_eq!(h.framing, Framing::Length(12));
        assert!(!h.keep_alive);
        assert_eq!(
            h.error_type.as_deref(),
            Some("ThrottlingException:http://x")
        );
        assert_eq!(h.retry_after.as_deref(), Some("3"));
        // no length: delimited by the close, so never reused
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        // HTTP/1.0 is not kept alive
        assert!(!head("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").keep_alive);
        // a length beside chunked is ignored, and the connection not reused
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        assert_eq!(
            head("HTTP/1.1 204 No Content\r\n\r\n").framing,
            Framing::Length(0)
        );
    }

    #[test]
    fn interim_partial_oversized_and_malformed_heads() {
        assert_eq!(
            parse_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"),
            Ok(Parsed::Interim(25))
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le"),
            Ok(Parsed::Partial)
        );
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() < MAX_HEAD {
            big.extend_from_slice(format!("x-pad: {}\r\n", "p".repeat(200)).as_bytes());
        }
        assert_eq!(parse_head(&big), Err(ProtocolError::HeadTooLarge));
        big.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&big), Err(ProtocolError::HeadTooLarge));
        for bad in [
            &b"HTTX/1.1 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad), Err(ProtocolError::BadHead(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn requests_go_out_in_origin_form_with_the_host_header_and_length() {
        let head = |uri: &str| {
            let mut h = RequestHead::post(uri.parse().unwrap(), 0).unwrap();
            h.value("authorization", &[b"Bearer ", b"t"]).unwrap();
            h.constant("accept", "*/*");
            let req = h.finish(Bytes::from_static(b"{}"));
            String::from_utf8(req.head().to_vec()).unwrap()
        };
        assert_eq!(
            head("https://q.us-east-1.amazonaws.com/generateAssistantResponse"),
            "POST /generateAssistantResponse HTTP/1.1\r\nhost: q.us-east-1.amazonaws.com\r\nauthorization: Bearer t\r\naccept: */*\r\ncontent-length: 2\r\n\r\n"
        );
        assert!(
            head("https://q.example:443/x?y=1")
                .starts_with("POST /x?y=1 HTTP/1.1\r\nhost: q.example\r\n")
        );
        assert!(
            head("http://127.0.0.1:8123/x")
                .starts_with("POST /x HTTP/1.1\r\nhost: 127.0.0.1:8123\r\n")
        );
        assert!(head("http://127.0.0.1:80").starts_with("POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n"));
        // user information in the URL never goes out
        let h = head("http://user:secret@127.0.0.1:8123/x");
        assert!(
            h.starts_with("POST /x HTTP/1.1\r\nhost: 127.0.0.1:8123\r\n"),
            "{h}"
        );
        assert!(!h.contains("secret"), "{h}");
        // a value that would end the line early is refused
        let mut h = RequestHead::post("http://127.0.0.1/x".parse().unwrap(), 0).unwrap();
        assert!(
            h.value("authorization", &[b"Bearer ", b"t\r\nx-evil: 1"])
                .is_err()
        );
        assert!(h.value("authorization", &[b"Bearer ", b"\x7f"]).is_err());
    }

    /// What decoding `input` handed over at the given cut points gives: the content and
    /// the bytes after the body if it ended, or the error.
    fn outcome(
        framing: Framing,
        input: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, Option<usize>), ProtocolError> {
        let mut d = BodyDecoder::new(framing);
        let mut content = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(0);
        points.push(input.len());
        points.sort_unstable();
        points.dedup();
        for pair in points.windows(2) {
            let part = &input[pair[0]..pair[1]];
            let used = d.decode(part, &mut |b| content.extend_from_slice(b))?;
            if d.is_done() {
                return Ok((content, Some(input.len() - pair[0] - used)));
            }
        }
        Ok((content, None))
    }

    /// Chunked bytes for `chunks`, some size lines with an extension, then trailers.
    fn chunked(chunks: &[(Vec<u8>, bool)], trailer: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (data, ext) in chunks.iter().filter(|(d, _)| !d.is_empty()) {
            out.extend_from_slice(format!("{:x}", data.len()).as_bytes());
            if *ext {
                out.extend_from_slice(b";name=value");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        if trailer {
            out.extend_from_slice(b"x-checksum: 1\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    proptest::proptest! {
        /// Any chunked body, cut anywhere, decodes to its data, ends where it ends, and
        /// leaves what follows alone.
        #[test]
        fn chunked_bodies_decode_to_their_data_however_cut(
            chunks in proptest::collection::vec(
                (proptest::collection::vec(proptest::num::u8::ANY, 0..300), proptest::bool::ANY),
                0..8,
            ),
            trailer in proptest::bool::ANY,
            cuts in proptest::collection::vec(proptest::num::usize::ANY, 0..12),
        ) {
            let mut input = chunked(&chunks, trailer);
            input.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let data: Vec<u8> = chunks.iter().flat_map(|(d, _)| d.clone()).collect();
            proptest::prop_assert_eq!(
                outcome(Framing::Chunked, &input, &cuts),
                Ok((data, Some(17)))
            );
        }

        /// Arbitrary bytes — valid or not — decode alike however they are cut (the
        /// whole-line fast path and the byte-wise path agree), and never panic; heads
        /// never panic either.
        #[test]
        fn any_bytes_decode_alike_however_cut(
            input in proptest::collection::vec(
                proptest::sample::select(b"0123456789abcdefAF;= \t\r\nxHTTP/1. ".to_vec()),
                0..200,
            ),
            cuts in proptest::collection::vec(proptest::num::usize::ANY, 0..12),
            length in 0u64..300,
        ) {
            for framing in [Framing::Chunked, Framing::Length(length), Framing::UntilClose] {
                let whole = outcome(framing, &input, &[]);
                let cut = outcome(framing, &input, &cuts);
                // An error may be found at a different point, but is found either way.
                match (&whole, &cut) {
                    (Err(_), Err(_)) => {}
                    _ => proptest::prop_assert_eq!(&whole, &cut),
                }
            }
            let _ = parse_head(&input);
        }
    }
}
