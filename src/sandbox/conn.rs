//! Serves one TCP connection with hyper directly (not `axum::serve`), so a handler can
//! make the connection end without an answer, or in the middle of one: the faults that
//! only exist below HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower::ServiceExt;

/// Put into every request's extensions by [`serve`]; lets a handler end its connection.
#[derive(Clone, Default)]
pub(super) struct ConnAbort {
    inner: Arc<AbortInner>,
}

#[derive(Default)]
struct AbortInner {
    notify: Notify,
    reset: AtomicBool,
}

impl ConnAbort {
    /// Drop the connection with a TCP reset; whatever was not yet sent is lost.
    /// The caller should then wait forever: the connection task drops it.
    pub(super) fn reset(&self) {
        self.inner.reset.store(true, Ordering::SeqCst);
        self.inner.notify.notify_one();
    }

    /// Close the connection normally (FIN): bytes already written still arrive.
    pub(super) fn close(&self) {
        self.inner.notify.notify_one();
    }
}

pub(super) async fn serve(stream: TcpStream, router: Router) {
    let abort = ConnAbort::default();
    let for_requests = abort.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(for_requests.clone());
        router.clone().oneshot(req)
    });
    // No header-read timeout: it would also close idle keep-alive connections, and a
    // client reusing one at that moment would see a lost connection the test did not ask for.
    let mut conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    // An http1 connection is Unpin (hyper boxes the handler's future), so it can be
    // polled by reference here and still be taken apart below, mid-request.
    tokio::select! {
        _ = &mut conn => {}
        () = abort.inner.notify.notified() => {
            if abort.inner.reset.load(Ordering::SeqCst) {
                let stream = conn.into_parts().io.into_inner();
                // Zero linger turns the close into a RST, as a crashed proxy would do.
                let _ = stream.set_zero_linger();
            }
            // Otherwise dropping `conn` closes the socket with a plain FIN after the
            // bytes hyper already flushed.
        }
    }
}
