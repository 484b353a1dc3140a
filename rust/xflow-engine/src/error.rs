//! The engine's errors. Each variant carries a stable `error_id` (PowerShell's ErrorId, asserted by
//! tests and watched by administrators) and an `ErrorCategory` name; the C# shim maps both in one
//! place. Messages never contain the API token: no variant has a field that could hold it.

use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),

    #[error(
        "refusing plain http for {url}: use https, or -AllowInsecureHttp with a loopback address"
    )]
    InsecureUrl { url: String },

    #[error("cannot reach the XFlow server at {url}: {reason}")]
    ServerUnreachable { url: String, reason: String },

    #[error("the XFlow server at {url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },

    #[error("the XFlow server at {url} refused the API token (HTTP {status}); check the token")]
    AuthenticationFailed { url: String, status: u16 },

    #[error("the XFlow server at {url} answered HTTP {status}: {reason}")]
    ServerError {
        url: String,
        status: u16,
        reason: String,
    },

    #[error("unexpected answer from {url}: {reason}")]
    ProtocolError { url: String, reason: String },

    #[error("delivery {id}: {reason}")]
    InvalidDelivery { id: String, reason: String },

    #[error(
        "delivery {id}: its id as the server sent it holds a lone surrogate (a \\u escape such \
         as \\ud800 that is no character), shown here as U+FFFD. It cannot be recorded or \
         acknowledged under the id the server knows, so it is not delivered; {kept}. Ask XFlow \
         to correct the id"
    )]
    UnreadableDeliveryId { id: String, kept: String },

    #[error("delivery {id}: content sha256 is {actual}, the server announced {expected}")]
    HashMismatch {
        id: String,
        expected: String,
        actual: String,
    },

    #[error("delivery {id} ({file_name}) did not pass the {system} content check: {reason}")]
    InvalidContent {
        id: String,
        file_name: String,
        system: &'static str,
        reason: String,
    },

    #[error("delivery {id} is quarantined: {reason} (kept in {})", .path.display())]
    Quarantined {
        id: String,
        reason: String,
        path: PathBuf,
    },

    #[error("folder {} does not exist", .path.display())]
    FolderNotFound { path: PathBuf },

    #[error("access denied writing to {}: {reason}", .path.display())]
    AccessDenied { path: PathBuf, reason: String },

    #[error("disk full writing to {}", .path.display())]
    DiskFull { path: PathBuf },

    #[error("cannot publish into {}: {reason}", .path.display())]
    PublishFailed { path: PathBuf, reason: String },

    #[error(
        "the state folder {} is on a network file system ({file_system}): its run lock and \
         SQLite journal need a local disk. Move the state folder to a local disk; the import \
         folders may stay on shares",
        .path.display()
    )]
    StateFolderOnNetworkShare { path: PathBuf, file_system: String },

    #[error(
        "another run holds the state folder {} and did not finish within {seconds} s; try again",
        .path.display()
    )]
    StateFolderBusy { path: PathBuf, seconds: u64 },

    #[error("the run was cancelled")]
    Cancelled,

    #[error("the run reached its deadline of {seconds} s and stopped; the next run carries on")]
    DeadlineExceeded { seconds: u64 },

    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// Stable identifier, used as PowerShell's ErrorId. Never rename one: tests and monitoring
    /// rules match on it.
    pub fn error_id(&self) -> &'static str {
        match self {
            Self::InvalidConfiguration(_) => "InvalidConfiguration",
            Self::InsecureUrl { .. } => "InsecureUrl",
            Self::ServerUnreachable { .. } => "ServerUnreachable",
            Self::Timeout { .. } => "Timeout",
            Self::AuthenticationFailed { .. } => "AuthenticationFailed",
            Self::ServerError { .. } => "ServerError",
            Self::ProtocolError { .. } => "ProtocolError",
            Self::InvalidDelivery { .. } => "InvalidDelivery",
            Self::UnreadableDeliveryId { .. } => "UnreadableDeliveryId",
            Self::HashMismatch { .. } => "HashMismatch",
            Self::InvalidContent { .. } => "InvalidContent",
            Self::Quarantined { .. } => "Quarantined",
            Self::FolderNotFound { .. } => "FolderNotFound",
            Self::AccessDenied { .. } => "AccessDenied",
            Self::DiskFull { .. } => "DiskFull",
            Self::PublishFailed { .. } => "PublishFailed",
            Self::StateFolderOnNetworkShare { .. } => "StateFolderOnNetworkShare",
            Self::StateFolderBusy { .. } => "StateFolderBusy",
            Self::Cancelled => "Cancelled",
            Self::DeadlineExceeded { .. } => "DeadlineExceeded",
            Self::Internal(_) => "Internal",
        }
    }

    /// The name of a `System.Management.Automation.ErrorCategory` member.
    pub fn category(&self) -> &'static str {
        match self {
            Self::InvalidConfiguration(_) | Self::InsecureUrl { .. } => "InvalidArgument",
            Self::ServerUnreachable { .. } | Self::ServerError { .. } => "ConnectionError",
            Self::Timeout { .. } => "OperationTimeout",
            Self::AuthenticationFailed { .. } => "AuthenticationError",
            Self::ProtocolError { .. } => "ProtocolError",
            Self::InvalidDelivery { .. }
            | Self::UnreadableDeliveryId { .. }
            | Self::HashMismatch { .. }
            | Self::InvalidContent { .. }
            | Self::Quarantined { .. } => "InvalidData",
            Self::FolderNotFound { .. } => "ObjectNotFound",
            Self::AccessDenied { .. } => "PermissionDenied",
            Self::DiskFull { .. } | Self::PublishFailed { .. } => "WriteError",
            Self::StateFolderOnNetworkShare { .. } => "InvalidArgument",
            Self::StateFolderBusy { .. } => "ResourceBusy",
            Self::Cancelled => "OperationStopped",
            Self::DeadlineExceeded { .. } => "OperationTimeout",
            Self::Internal(_) => "NotSpecified",
        }
    }

    /// What the error is about: a URL, a folder or a delivery id.
    pub fn target(&self) -> Option<String> {
        match self {
            Self::InsecureUrl { url }
            | Self::ServerUnreachable { url, .. }
            | Self::Timeout { url, .. }
            | Self::AuthenticationFailed { url, .. }
            | Self::ServerError { url, .. }
            | Self::ProtocolError { url, .. } => Some(url.clone()),
            Self::InvalidDelivery { id, .. }
            | Self::UnreadableDeliveryId { id, .. }
            | Self::HashMismatch { id, .. }
            | Self::InvalidContent { id, .. }
            | Self::Quarantined { id, .. } => Some(id.clone()),
            Self::FolderNotFound { path }
            | Self::AccessDenied { path, .. }
            | Self::DiskFull { path }
            | Self::PublishFailed { path, .. }
            | Self::StateFolderOnNetworkShare { path, .. }
            | Self::StateFolderBusy { path, .. } => Some(path.display().to_string()),
            Self::InvalidConfiguration(_)
            | Self::Cancelled
            | Self::DeadlineExceeded { .. }
            | Self::Internal(_) => None,
        }
    }

    /// Classifies an I/O error that happened while writing into `path`.
    pub fn from_io(path: &std::path::Path, err: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        let path = path.to_path_buf();
        match err.kind() {
            ErrorKind::NotFound => Self::FolderNotFound { path },
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Self::AccessDenied {
                path,
                reason: err.to_string(),
            },
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Self::DiskFull { path },
            _ => Self::PublishFailed {
                path,
                reason: err.to_string(),
            },
        }
    }

    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            error_id: self.error_id(),
            category: self.category(),
            message: self.to_string(),
            target: self.target(),
        }
    }
}

/// The serialised form of an error, as it crosses the FFI boundary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub error_id: &'static str,
    pub category: &'static str,
    pub message: String,
    pub target: Option<String>,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn io_errors_are_classified_by_kind() {
        let dir = std::path::Path::new("/srv/import");
        let cases = [
            (io::ErrorKind::NotFound, "FolderNotFound"),
            (io::ErrorKind::PermissionDenied, "AccessDenied"),
            (io::ErrorKind::StorageFull, "DiskFull"),
            (io::ErrorKind::QuotaExceeded, "DiskFull"),
            (io::ErrorKind::Interrupted, "PublishFailed"),
        ];
        for (kind, id) in cases {
            let err = EngineError::from_io(dir, &io::Error::from(kind));
            assert_eq!(err.error_id(), id, "{kind:?}");
            assert_eq!(err.target().as_deref(), Some("/srv/import"));
        }
    }

    #[test]
    fn report_carries_id_category_and_target() {
        let err = EngineError::AuthenticationFailed {
            url: "https://x.example/api".into(),
            status: 401,
        };
        let report = err.report();
        assert_eq!(report.error_id, "AuthenticationFailed");
        assert_eq!(report.category, "AuthenticationError");
        assert_eq!(report.target.as_deref(), Some("https://x.example/api"));
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains("\"errorId\":\"AuthenticationFailed\""),
            "{json}"
        );
    }
}
