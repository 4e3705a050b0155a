//! `Connection`: owns framing over any byte stream, blocking (client) or async (agent).
//!
//! One type for both sides means the framing is written and tested once.
//!
//! Receiving allocates by what actually arrived, never by the length a header announces: a
//! payload buffer grows in steps of at most [`RECV_CHUNK`] as bytes come in. The async side
//! also takes [`RecvLimits`]: a per-frame limit (the agent allows only small frames before the
//! hello) and a [`ByteBudget`] shared by all connections for payload bytes beyond a small free
//! allowance per frame, so many half-sent frames cannot add up to more than the budget.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Serialize, de::DeserializeOwned};
use zeroize::Zeroizing;

use crate::codec::{FRAME_HEADER_LEN, ProtoError, decode, encode_frame, frame_len};

/// A framed message stream. `recv` returns `Ok(None)` on a clean end of stream (the peer closed
/// between frames) and [`ProtoError::Truncated`] when it closed inside one.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
}

impl<S> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection { stream }
    }

    /// The underlying stream, e.g. to read peer credentials.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// The most a payload buffer grows by at once, and the bytes of each frame not charged to a
/// [`ByteBudget`].
pub const RECV_CHUNK: usize = 4 * 1024;

/// Payload bytes being received, shared by many connections, up to a cap.
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    cap: usize,
}

impl ByteBudget {
    pub fn new(cap: usize) -> Self {
        ByteBudget {
            used: AtomicUsize::new(0),
            cap,
        }
    }

    /// Bytes currently taken.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.cap)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Bounds on receiving one frame.
#[derive(Debug, Clone, Copy)]
pub struct RecvLimits<'a> {
    /// Largest payload accepted now (at most `MAX_FRAME_LEN`).
    pub max_frame: usize,
    /// Charged for payload bytes beyond the first [`RECV_CHUNK`] of a frame.
    pub budget: Option<&'a ByteBudget>,
}

/// A payload buffer that grows by what arrived, zeroized on every reallocation and on drop,
/// and that gives its budget back when dropped.
struct Payload<'a> {
    buf: Zeroizing<Vec<u8>>,
    len: usize,
    budget: Option<&'a ByteBudget>,
    charged: usize,
}

impl<'a> Payload<'a> {
    fn new(len: usize, budget: Option<&'a ByteBudget>) -> Self {
        Payload {
            buf: Zeroizing::new(Vec::with_capacity(len.min(RECV_CHUNK))),
            len,
            budget,
            charged: 0,
        }
    }

    fn done(&self) -> bool {
        self.buf.len() >= self.len
    }

    /// Room for the next read (at most [`RECV_CHUNK`] bytes), growing the buffer — and
    /// charging the budget — only as far as needed.
    fn spare(&mut self) -> Result<&mut [u8], ProtoError> {
        let filled = self.buf.len();
        let want = (self.len - filled).min(RECV_CHUNK);
        if self.buf.capacity() - filled < want {
            let new_cap = (self.buf.capacity() * 2).max(filled + want).min(self.len);
            let charge = new_cap.saturating_sub(RECV_CHUNK) - self.charged;
            if charge > 0 {
                if let Some(b) = self.budget
                    && !b.try_take(charge)
                {
                    return Err(ProtoError::Busy);
                }
                self.charged += charge;
            }
            let mut bigger = Zeroizing::new(Vec::with_capacity(new_cap));
            bigger.extend_from_slice(&self.buf);
            self.buf = bigger; // the old buffer is zeroized as it drops
        }
        self.buf.resize(filled + want, 0);
        Ok(&mut self.buf[filled..])
    }

    /// After a read of `n` bytes into [`Payload::spare`].
    fn filled(&mut self, start: usize, n: usize) {
        self.buf.truncate(start + n);
    }
}

impl Drop for Payload<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.budget {
            b.give_back(self.charged);
        }
    }
}

/// Fills `buf` completely; `Ok(false)` when the stream ended before the first byte.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool, ProtoError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(ProtoError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

impl<S: Read + Write> Connection<S> {
    /// Sends one message as one frame.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), ProtoError> {
        let frame = encode_frame(msg)?;
        self.stream.write_all(&frame)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Receives one message.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ProtoError> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        if !read_full(&mut self.stream, &mut header)? {
            return Ok(None);
        }
        let len = frame_len(header)?;
        let mut payload = Payload::new(len, None);
        while !payload.done() {
            let start = payload.buf.len();
            let n = loop {
                match self.stream.read(payload.spare()?) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            };
            if n == 0 {
                return Err(ProtoError::Truncated);
            }
            payload.filled(start, n);
        }
        decode(&payload.buf).map(Some)
    }

    /// Sends a request and waits for its response; end of stream is an error here.
    pub fn call<Q: Serialize, A: DeserializeOwned>(&mut self, req: &Q) -> Result<A, ProtoError> {
        self.send(req)?;
        self.recv()?.ok_or(ProtoError::Truncated)
    }
}

#[cfg(feature = "tokio")]
mod async_impl {
    use super::*;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
        /// Async twin of [`Connection::send`].
        pub async fn send_async<T: Serialize>(&mut self, msg: &T) -> Result<(), ProtoError> {
            let frame = encode_frame(msg)?;
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            Ok(())
        }

        /// Async twin of [`Connection::recv`].
        pub async fn recv_async<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ProtoError> {
            self.recv_async_limited(RecvLimits {
                max_frame: crate::MAX_FRAME_LEN,
                budget: None,
            })
            .await
        }

        /// [`Connection::recv_async`] within `limits`: a larger frame is
        /// [`ProtoError::TooLargeHere`] (from its header, before anything is allocated), and
        /// [`ProtoError::Busy`] when the shared budget cannot cover the rest of a frame.
        pub async fn recv_async_limited<T: DeserializeOwned>(
            &mut self,
            limits: RecvLimits<'_>,
        ) -> Result<Option<T>, ProtoError> {
            let mut header = [0u8; FRAME_HEADER_LEN];
            let mut filled = 0;
            while filled < header.len() {
                let n = self.stream.read(&mut header[filled..]).await?;
                if n == 0 {
                    return if filled == 0 {
                        Ok(None)
                    } else {
                        Err(ProtoError::Truncated)
                    };
                }
                filled += n;
            }
            let len = frame_len(header)?;
            if len > limits.max_frame {
                return Err(ProtoError::TooLargeHere {
                    len,
                    limit: limits.max_frame,
                });
            }
            let mut payload = Payload::new(len, limits.budget);
            while !payload.done() {
                let start = payload.buf.len();
                let n = self.stream.read(payload.spare()?).await?;
                if n == 0 {
                    return Err(ProtoError::Truncated);
                }
                payload.filled(start, n);
            }
            decode(&payload.buf).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response};
    use std::io::Cursor;

    /// A duplex stand-in: reads from `input`, writes to `output`.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }
    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn conn(input: Vec<u8>) -> Connection<Duplex> {
        Connection::new(Duplex {
            input: Cursor::new(input),
            output: Vec::new(),
        })
    }

    #[test]
    fn clean_eof_is_none_and_partial_is_truncated() {
        assert!(conn(vec![]).recv::<Request>().unwrap().is_none());
        assert!(matches!(
            conn(vec![0, 0]).recv::<Request>(),
            Err(ProtoError::Truncated)
        ));
        assert!(matches!(
            conn(vec![0, 0, 0, 5, 1]).recv::<Request>(),
            Err(ProtoError::Truncated)
        ));
    }

    #[test]
    fn two_frames_in_a_row() {
        let mut bytes = encode_frame(&Request::List).unwrap().to_vec();
        bytes.extend_from_slice(&encode_frame(&Request::Status).unwrap());
        let mut c = conn(bytes);
        assert_eq!(c.recv::<Request>().unwrap(), Some(Request::List));
        assert_eq!(c.recv::<Request>().unwrap(), Some(Request::Status));
        assert_eq!(c.recv::<Request>().unwrap(), None);
        c.send(&Response::Stored { persistent: true }).unwrap();
        assert_eq!(c.get_ref().output, vec![0, 0, 0, 2, 2, 1]);
    }

    #[test]
    fn oversized_frame_is_refused() {
        assert!(matches!(
            conn(vec![0xff, 0xff, 0xff, 0xff]).recv::<Request>(),
            Err(ProtoError::TooLarge(_))
        ));
    }

    #[test]
    fn memory_follows_the_bytes_received_not_the_announced_length() {
        // A header announcing 60 000 bytes followed by 10: the buffer holds one chunk.
        let mut bytes = 60_000u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[7; 10]);
        let mut p = Payload::new(60_000, None);
        let spare = p.spare().unwrap();
        assert_eq!(spare.len(), RECV_CHUNK);
        assert!(p.buf.capacity() <= RECV_CHUNK);
        assert!(matches!(
            conn(bytes).recv::<Request>(),
            Err(ProtoError::Truncated)
        ));
    }

    #[test]
    fn the_shared_budget_caps_what_many_frames_hold() {
        let budget = ByteBudget::new(3 * RECV_CHUNK);
        let mut a = Payload::new(60_000, Some(&budget));
        let grow = |p: &mut Payload<'_>| -> Result<(), ProtoError> {
            while !p.done() {
                let start = p.buf.len();
                let n = p.spare()?.len();
                p.filled(start, n);
            }
            Ok(())
        };
        // The first chunk is free; the rest of a 60 000-byte frame exceeds the budget.
        assert!(matches!(grow(&mut a), Err(ProtoError::Busy)));
        assert!(budget.used() <= 3 * RECV_CHUNK);
        drop(a);
        assert_eq!(budget.used(), 0);
        // A frame within the free chunk never touches the budget.
        let exhausted = ByteBudget::new(0);
        let mut small = Payload::new(RECV_CHUNK, Some(&exhausted));
        grow(&mut small).unwrap();
        assert_eq!(small.buf.len(), RECV_CHUNK);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn a_frame_over_the_limit_here_is_refused_from_its_header() {
        use tokio::io::AsyncWriteExt;
        let (mut a, b) = tokio::io::duplex(1024);
        let mut b = Connection::new(b);
        a.write_all(&2000u32.to_be_bytes()).await.unwrap();
        let limits = RecvLimits {
            max_frame: 1024,
            budget: None,
        };
        assert!(matches!(
            b.recv_async_limited::<Request>(limits).await,
            Err(ProtoError::TooLargeHere { len: 2000, .. })
        ));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn async_side_speaks_the_same_frames() {
        let (a, b) = tokio::io::duplex(1024);
        let mut a = Connection::new(a);
        let mut b = Connection::new(b);
        a.send_async(&Request::Shutdown).await.unwrap();
        assert_eq!(
            b.recv_async::<Request>().await.unwrap(),
            Some(Request::Shutdown)
        );
        drop(a);
        assert_eq!(b.recv_async::<Request>().await.unwrap(), None);
    }
}
