//! A proxy's client connection with an idle bound: closed once [`IDLE`] passed with no byte
//! read from or written to it (a client that opened it and went silent, one that stopped
//! mid-header, or an answer that never came).
//!
//! One timer per connection, set once and moved forward only when it fires: a request costs
//! a clock read, not a timer. (hyper's own `header_read_timeout` arms a fresh timer for each
//! request, and each one woke the engine's runtime once more: an eventfd write and an extra
//! `epoll_wait` on every request, a tenth of what the proxy adds to a small request.)

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a client connection may stay silent both ways.
pub(crate) const IDLE: Duration = Duration::from_secs(120);

/// `io`, failing with `TimedOut` once it has been idle for its bound.
pub(crate) struct Idle<I> {
    io: I,
    bound: Duration,
    /// When a byte last moved.
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<I> Idle<I> {
    /// Needs the runtime's timer.
    pub(crate) fn new(io: I, bound: Duration) -> Idle<I> {
        let now = Instant::now();
        Idle {
            io,
            bound,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + bound)),
        }
    }

    /// Ready with the error once the connection has been idle for its bound; otherwise
    /// pending, with the timer set to wake this task when it may be.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let due = self.last + self.bound;
            if Instant::now() >= due {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client connection was idle too long",
                ));
            }
            self.timer.as_mut().reset(due);
        }
    }

    /// `r` as it is, noting progress; when pending, the idle bound's error if it passed.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
        moved: bool,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => match self.poll_idle(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            Poll::Ready(r) => {
                if moved {
                    self.last = Instant::now();
                }
                Poll::Ready(r)
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Idle<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        let moved = buf.filled().len() > before;
        this.watch(cx, r, moved)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Idle<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, data);
        let moved = matches!(r, Poll::Ready(Ok(n)) if n > 0);
        this.watch(cx, r, moved)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        let moved = matches!(r, Poll::Ready(Ok(n)) if n > 0);
        this.watch(cx, r, moved)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, r, false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const BOUND: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_times_out_at_its_bound() {
        let (near, _far) = tokio::io::duplex(64);
        let mut idle = Idle::new(near, BOUND);
        let start = Instant::now();
        let mut buf = [0u8; 8];
        let err = tokio::time::timeout(3 * BOUND, idle.read(&mut buf))
            .await
            .expect("closed at its bound")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(Instant::now() - start, BOUND);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_either_way_move_the_bound() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut idle = Idle::new(near, BOUND);
        let start = Instant::now();
        let mut buf = [0u8; 8];
        // A byte from the client at 8 s, one to it at 16 s: idle from then on.
        let peer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(8)).await;
            far.write_all(b"x").await.unwrap();
            let mut b = [0u8; 1];
            far.read_exact(&mut b).await.unwrap();
            far
        });
        assert_eq!(idle.read(&mut buf).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_secs(8)).await;
        idle.write_all(b"y").await.unwrap();
        let _far = peer.await.unwrap();
        let err = tokio::time::timeout(3 * BOUND, idle.read(&mut buf))
            .await
            .expect("closed at its bound")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(Instant::now() - start, Duration::from_secs(16) + BOUND);
    }
}
