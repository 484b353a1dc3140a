//! Checking one delivery before anything is written: a known system with a folder, a size under
//! the limit, valid base64 whose sha256 is the announced one (decoded in a stream, never held),
//! and, in the same pass, the content check of its system (`content`, docs/formats.md).

use crate::config::{System, ValidatedConfig};
use crate::content::{ContentCheck, Judgement};
use crate::error::EngineError;
use crate::journal::{self, Record, State};
use crate::names;
use crate::page_body::Content;
use crate::protocol::WireDelivery;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// A delivery ready to be published: the journal row it will get and its content, still base64
/// in the page it came in (decoded in pieces on its way into the file).
pub(crate) struct Ready<'a> {
    pub record: Record,
    pub content: &'a Content<'a>,
    /// The content check's findings under `Warn`: reported, and the delivery goes on.
    pub warnings: Vec<String>,
}

pub(crate) enum Verdict<'a> {
    Ready(Box<Ready<'a>>),
    /// Kept out of the folders (quarantined, or in a preview only reported).
    Refused {
        system: Option<System>,
        error: EngineError,
    },
    /// For a system with no folder while the server still holds it (mode Ack): left pending.
    NoFolder(System),
}

/// A delivery whose id held a lone surrogate, refused before anything looks it up: its `id` is
/// not the server's id and may be another delivery's, so nothing may be journaled, published or
/// acknowledged under it. Nothing is lost: the server keeps it pending (mode Ack), or its page
/// stays in the spool, processed again on every run (`page::retire` keeps such a page).
pub(crate) fn unreadable_id(
    cfg: &ValidatedConfig,
    wire: &WireDelivery<'_>,
    server_keeps_it: bool,
) -> Option<EngineError> {
    if wire.id.is_faithful() {
        return None;
    }
    let kept = if server_keeps_it {
        "it stays pending on the server".to_owned()
    } else {
        format!(
            "the page that brought it stays in {} as the server sent it (ack mode None: the \
             server has forgotten it); once XFlow has sent it again with a readable id, delete \
             that page",
            cfg.state_path.join(crate::state_dir::SPOOL_DIR).display()
        )
    };
    Some(EngineError::UnreadableDeliveryId {
        id: wire.id.to_string(),
        kept,
    })
}

/// Judges `wire`. `server_keeps_it` is false where the server has already forgotten the delivery
/// (mode None, a spooled page): a delivery for a system without a folder is then refused (kept in
/// quarantine) instead of left pending. An error is ours, not the delivery's: its page could not
/// be read back from the state folder.
pub(crate) fn judge<'a>(
    cfg: &ValidatedConfig,
    run_id: &str,
    wire: &'a WireDelivery<'a>,
    server_keeps_it: bool,
) -> Result<Verdict<'a>, EngineError> {
    let refused = |system, reason: String| Verdict::Refused {
        system,
        error: EngineError::InvalidDelivery {
            id: wire.id.to_string(),
            reason,
        },
    };
    let Some(system) = System::from_wire(&wire.system) else {
        return Ok(refused(None, format!("unknown system '{}'", wire.system)));
    };
    let Some(folder) = cfg.folder_for(system) else {
        if server_keeps_it {
            return Ok(Verdict::NoFolder(system));
        }
        return Ok(refused(
            Some(system),
            format!(
                "it is for {}, which has no folder configured (kept, since ack mode None means \
                 the server has forgotten it)",
                system.wire_name()
            ),
        ));
    };
    let check = ContentCheck::new(system, cfg.validation_for(system));
    let (size, judgement) = match verify(wire, cfg.max_delivery_bytes, check)? {
        Decoded::Intact { size, judgement } => (size, judgement),
        Decoded::Refused(error) => {
            return Ok(Verdict::Refused {
                system: Some(system),
                error,
            });
        }
    };
    let warnings = match judgement {
        Judgement::Clean => Vec::new(),
        Judgement::Warn(lines) => lines
            .into_iter()
            .map(|line| {
                format!(
                    "{} (delivery {}): {line} [{} validation Warn: delivered all the same]",
                    wire.file_name,
                    wire.id,
                    system.wire_name()
                )
            })
            .collect(),
        Judgement::Refuse(reason) => {
            return Ok(Verdict::Refused {
                system: Some(system),
                error: EngineError::InvalidContent {
                    id: wire.id.to_string(),
                    file_name: wire.file_name.clone(),
                    system: system.wire_name(),
                    reason,
                },
            });
        }
    };
    Ok(Verdict::Ready(Box::new(Ready {
        record: ready_record(wire, system, folder.to_path_buf(), size, run_id),
        content: &wire.content,
        warnings,
    })))
}

fn ready_record(
    wire: &WireDelivery<'_>,
    system: System,
    folder: PathBuf,
    size: u64,
    run_id: &str,
) -> Record {
    Record {
        wanted_name: names::safe_file_name(&wire.file_name, &wire.id),
        requested_name: wire.file_name.clone(),
        id: wire.id.to_string(),
        system,
        file_name: None,
        folder,
        temp_name: None,
        sha256: wire.sha256.trim().to_ascii_lowercase(),
        size,
        created_at: wire.created_at.clone(),
        state: State::Publishing,
        reason: None,
        run_id: run_id.to_owned(),
        received_at: journal::now(),
        published_at: None,
        acknowledged_at: None,
    }
}

/// What decoding a delivery's content found.
enum Decoded {
    /// Its size and the content check's judgement.
    Intact { size: u64, judgement: Judgement },
    /// Too large, not base64, or not the announced sha256.
    Refused(EngineError),
}

/// Checks size, base64 and sha256 by decoding in a stream, feeding the same decoded bytes to the
/// content check. An error is ours, not the delivery's: its page could not be read back from the
/// state folder.
fn verify(
    wire: &WireDelivery<'_>,
    max_bytes: u64,
    mut check: Option<ContentCheck>,
) -> Result<Decoded, EngineError> {
    let invalid = |reason: String| EngineError::InvalidDelivery {
        id: wire.id.to_string(),
        reason,
    };
    let approximate = (wire.content.encoded_len() / 4) * 3;
    if approximate > max_bytes {
        return Ok(Decoded::Refused(invalid(format!(
            "it is about {approximate} bytes, more than the limit of {max_bytes}"
        ))));
    }
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let decoded = wire.content.decode(&mut |piece| {
        hasher.update(piece);
        if let Some(check) = check.as_mut() {
            check.update(piece);
        }
        size += piece.len() as u64;
        Ok(())
    });
    match decoded {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Ok(Decoded::Refused(invalid(e.to_string())));
        }
        Err(e) => return Err(EngineError::Internal(format!("delivery {}: {e}", wire.id))),
    }
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(wire.sha256.trim()) {
        return Ok(Decoded::Refused(EngineError::HashMismatch {
            id: wire.id.to_string(),
            expected: wire.sha256.clone(),
            actual,
        }));
    }
    Ok(Decoded::Intact {
        size,
        judgement: check.map_or(Judgement::Clean, ContentCheck::finish),
    })
}
