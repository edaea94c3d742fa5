//! Pharmacogenomic results and the re-check of current medicines (moved from smr-server).
//! Placeholder: being filled in.

use tokio::sync::broadcast;

/// A DetectedIssue created by a re-check, announced to event-stream subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEvent {
    /// `DetectedIssue/{id}`.
    pub issue: String,
    /// The patient's id.
    pub patient: String,
}

/// The broadcast of new DetectedIssues (one per App, not a process-wide static).
#[derive(Debug)]
pub struct IssueEvents {
    sender: broadcast::Sender<IssueEvent>,
}

impl Default for IssueEvents {
    fn default() -> Self {
        // Slow subscribers lose the oldest events (and are told how many) rather than
        // holding writers back.
        IssueEvents {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl IssueEvents {
    pub fn subscribe(&self) -> broadcast::Receiver<IssueEvent> {
        self.sender.subscribe()
    }

    pub(crate) fn send(&self, event: IssueEvent) {
        // No subscribers is normal; the send error only says so.
        let _ = self.sender.send(event);
    }
}
