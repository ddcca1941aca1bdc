//! What the exporters report about themselves, for the dashboard header and
//! the headless log. Sent as owned snapshots; nobody shares a lock.

/// State of one exporter (OTLP push, Prometheus endpoint, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ExportState {
    /// Started, nothing delivered yet.
    #[default]
    Connecting,
    /// The last export succeeded.
    Ok,
    /// The last export failed; samples are queued (bounded) or dropped.
    Failing,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportStatus {
    /// e.g. "otlp grpc http://localhost:4317".
    pub target: String,
    pub state: ExportState,
    /// Samples delivered since start.
    pub exported: u64,
    /// Samples dropped because the queue was full (collector too slow/down).
    pub dropped: u64,
    pub last_error: Option<String>,
}
