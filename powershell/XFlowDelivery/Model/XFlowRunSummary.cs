using System;

namespace XFlowDelivery.Model
{
    /// <summary>
    /// The outcome of one run; Invoke-XFlowDelivery writes it last, after the delivered files
    /// (also before a terminating error, so a script that catches the error still has it).
    /// </summary>
    public sealed class XFlowRunSummary
    {
        public string RunId { get; set; } = "";

        /// <summary>Succeeded, CompletedWithErrors, ImportStalled, Failed, Cancelled or Locked.</summary>
        public string Outcome { get; set; } = "";

        public long Delivered { get; set; }

        /// <summary>Deliveries refused or quarantined (each also reported as an error).</summary>
        public long Failed { get; set; }

        /// <summary>Deliveries for a system without a configured folder, left on the server.</summary>
        public long Skipped { get; set; }

        /// <summary>Deliveries that came back after they were published: acknowledged again, not rewritten.</summary>
        public long Reacknowledged { get; set; }

        /// <summary>With -WhatIf: how many deliveries would have been written.</summary>
        public long Planned { get; set; }

        public long Pages { get; set; }
        public DateTimeOffset? StartedAt { get; set; }
        public TimeSpan Duration { get; set; }

        /// <summary>The errorId of the run-level failure, if any.</summary>
        public string? ErrorId { get; set; }

        public string? ErrorMessage { get; set; }

        /// <summary>Import folders whose importer has stopped (reported by every run until they drain).</summary>
        public XFlowImportStall[] Stalls { get; set; } = new XFlowImportStall[0];

        /// <summary>What the scheduled task's entry script exits with for this run (see docs/monitoring.md).</summary>
        public int ExitCode => ExitCodes.FromOutcome(Outcome, ErrorId);
    }
}
