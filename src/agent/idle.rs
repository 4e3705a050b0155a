//! Idle exit (`--idle-exit SECONDS`): the agent stops by itself once no connection has been
//! open for that long. Each connection holds an [`Open`] guard; [`Activity::idle_for`]
//! completes when the count has stayed at zero for the whole period.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// The number of open connections, observable.
#[derive(Debug)]
pub(crate) struct Activity {
    open: watch::Sender<usize>,
}

/// Held by a connection while it is open.
#[derive(Debug)]
pub(crate) struct Open(Arc<Activity>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            open: watch::channel(0).0,
        })
    }

    /// Counts a connection as open until the guard is dropped.
    pub(crate) fn open(self: &Arc<Self>) -> Open {
        self.open.send_modify(|n| *n += 1);
        Open(Arc::clone(self))
    }

    /// Completes once no connection has been open for `period` without a break.
    pub(crate) async fn idle_for(&self, period: Duration) {
        let mut rx = self.open.subscribe();
        loop {
            if rx.wait_for(|n| *n == 0).await.is_err() {
                return std::future::pending().await;
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => return,
                // A connection came (or went) meanwhile: start counting again once all are gone.
                changed = rx.changed() => if changed.is_err() {
                    return std::future::pending().await;
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(60);

    /// True when `idle_for(PERIOD)` completes within `within` of (paused, virtual) time.
    async fn idles_within(activity: &Activity, within: Duration) -> bool {
        tokio::time::timeout(within, activity.idle_for(PERIOD))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn idle_after_the_period_without_connections() {
        let a = Activity::new();
        assert!(!idles_within(&a, PERIOD - Duration::from_secs(1)).await);
        assert!(idles_within(&a, PERIOD + Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn never_idle_while_a_connection_is_open() {
        let a = Activity::new();
        let open = a.open();
        assert!(!idles_within(&a, PERIOD * 10).await);
        drop(open);
        assert!(idles_within(&a, PERIOD + Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_restarts_the_period() {
        let a = Activity::new();
        let waiter = {
            let a = Arc::clone(&a);
            tokio::spawn(async move { a.idle_for(PERIOD).await })
        };
        tokio::time::sleep(PERIOD - Duration::from_secs(1)).await;
        drop(a.open());
        // The period counts again from the close: not idle 2 s after the original deadline…
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiter.is_finished());
        // …but idle a full period after the close.
        tokio::time::sleep(PERIOD).await;
        tokio::task::yield_now().await;
        assert!(waiter.is_finished());
    }
}
