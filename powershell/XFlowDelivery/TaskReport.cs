using System.Globalization;
using System.Management.Automation;
using System.Text;
using XFlowDelivery.Model;

namespace XFlowDelivery
{
    /// <summary>
    /// The one line the task entry script (XFlowDelivery.Task.ps1) prints and writes to the event
    /// log for a run (docs/monitoring.md). Built here rather than in the script: a fresh process
    /// pays for every script statement it runs for the first time, and the task starts 480 times
    /// a day.
    /// </summary>
    public static class TaskReport
    {
        /// <summary>The longest first-error text the line carries.</summary>
        public const int MaxErrorLength = 1000;

        /// <param name="summary">The run's summary; null when the run did not start.</param>
        /// <param name="exitCode">What the script exits with.</param>
        /// <param name="firstError">The first error (an ErrorRecord or exception), or null.</param>
        public static string Line(XFlowRunSummary? summary, int exitCode, object? firstError)
        {
            var line = new StringBuilder(256);
            if (summary != null)
            {
                line.AppendFormat(CultureInfo.InvariantCulture,
                    "XFlowDelivery run {0}: {1}; {2} delivered, {3} failed, {4} skipped, {5} acknowledged again; exit code {6} ({7}).",
                    summary.RunId, summary.Outcome, summary.Delivered, summary.Failed, summary.Skipped,
                    summary.Reacknowledged, exitCode, ExitCodes.Describe(exitCode));
                // Named on every run until the folder drains, whatever else the run found.
                foreach (var stall in summary.Stalls)
                {
                    line.Append(" Import stalled: ").Append(stall).Append('.');
                }
            }
            else
            {
                line.AppendFormat(CultureInfo.InvariantCulture, "XFlowDelivery run did not start; exit code {0} ({1}).",
                    exitCode, ExitCodes.Describe(exitCode));
            }
            var error = FirstLine(Message(firstError));
            if (error != null)
            {
                line.Append(" First error: ").Append(error.Length > MaxErrorLength ? error.Substring(0, MaxErrorLength) : error);
            }
            return line.ToString();
        }

        private static string? Message(object? error)
        {
            if (error is PSObject wrapped) error = wrapped.BaseObject;
            return error switch
            {
                ErrorRecord record => record.Exception?.Message ?? record.ToString(),
                System.Exception exception => exception.Message,
                null => null,
                _ => error.ToString(),
            };
        }

        private static string? FirstLine(string? text)
        {
            if (text == null) return null;
            var end = text.IndexOfAny(new[] { '\r', '\n' });
            return end < 0 ? text : text.Substring(0, end);
        }
    }
}
