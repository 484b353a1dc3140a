//! Acknowledging published deliveries (mode Ack), then journaling that. The server treats an
//! acknowledgement as idempotent, so a crash between the two (or a power cut before the journal's
//! next flush) only means acknowledging again.

use crate::crash::crash_point;
use crate::error::Result;
use crate::journal::{self, Journal};
use crate::protocol::Client;
use crate::scope::Scope;

pub(crate) async fn acknowledge(
    scope: &Scope<'_>,
    journal: &mut Journal,
    client: &Client,
    ids: &[String],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    scope
        .reporter
        .verbose(format_args!("acknowledging {} deliveries", ids.len()));
    scope.cancellable(client.ack(ids)).await?;
    crash_point!("after-ack");
    let at = journal::now();
    // Deferred: lost at a power cut, the rows stay `published` and recovery acknowledges again.
    journal.batch_deferred(|b| ids.iter().try_for_each(|id| b.mark_acknowledged(id, &at)))
}
