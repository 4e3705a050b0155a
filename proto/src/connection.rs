//! `Connection`: owns framing over any byte stream, blocking (client) or async (agent).
//!
//! One type for both sides means the framing is written and tested once.

use std::io::{Read, Write};

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
        let mut payload = Zeroizing::new(vec![0u8; len]);
        if !read_full(&mut self.stream, &mut payload)? && len > 0 {
            return Err(ProtoError::Truncated);
        }
        decode(&payload).map(Some)
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
            let mut payload = Zeroizing::new(vec![0u8; len]);
            match self.stream.read_exact(&mut payload).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ProtoError::Truncated);
                }
                Err(e) => return Err(e.into()),
            }
            decode(&payload).map(Some)
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
