//! A request body that must arrive whole within a deadline: a client trickling its upload
//! a byte at a time gets an error (and the connection a 408) instead of holding a handler.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// What reading a body can fail with.
type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// `inner`, failing once `deadline` passes before its last frame.
pub(super) struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    /// Started the first time the body is not ready, so requests without a body never
    /// allocate a timer.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set when the deadline passed, so the listener answers 408.
    expired: Arc<AtomicBool>,
}

impl<B> DeadlineBody<B> {
    pub(super) fn new(inner: B, timeout: Duration, expired: Arc<AtomicBool>) -> Self {
        DeadlineBody {
            inner,
            deadline: Instant::now() + timeout,
            sleep: None,
            expired,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err("the request body did not arrive in time".into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
