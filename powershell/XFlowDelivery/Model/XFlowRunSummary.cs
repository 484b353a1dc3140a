using System;

namespace XFlowDelivery.Model
{
    /// <summary>
    /// The outcome of one run. Produced from the engine's "summary" event; not yet written to the
    /// pipeline (a later issue), only reported as a verbose line.
    /// </summary>
    public sealed class XFlowRunSummary
    {
        public string RunId { get; set; } = "";

        /// <summary>Succeeded, CompletedWithErrors, Failed, Cancelled or Locked.</summary>
        public string Outcome { get; set; } = "";

        public long Delivered { get; set; }
        public long Failed { get; set; }
        public DateTimeOffset? StartedAt { get; set; }
        public TimeSpan Duration { get; set; }

        /// <summary>The errorId of the run-level failure, if any.</summary>
        public string? ErrorId { get; set; }

        public string? ErrorMessage { get; set; }
    }
}
