using System;
using System.Globalization;
using System.Management.Automation;
using System.Text;
using XFlowDelivery.Cmdlets;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery
{
    /// <summary>
    /// What the scheduled task reports for one run (Invoke-XFlowDelivery -AsScheduledTask, which
    /// the entry script XFlowDelivery.Task.ps1 runs; docs/monitoring.md): a line per delivered
    /// file as it lands, then the run's line, on standard output, and on Windows that line in the
    /// Application log. Done here, not in the script: a
    /// fresh process pays for every script statement it runs for the first time, and the task
    /// starts 480 times a day (docs/benchmarks.md).
    /// </summary>
    internal sealed class TaskReport
    {
        /// <summary>The longest first-error text the line carries.</summary>
        internal const int MaxErrorLength = 1000;

        private XFlowRunSummary? _summary;
        private ErrorRecord? _firstError;
        private ErrorRecord? _ending;

        internal void Delivered(XFlowDeliveredFile file) =>
            Console.Out.WriteLine(string.Format(CultureInfo.InvariantCulture, "Delivered {0} {1} ({2} bytes)", file.System, file.Path, file.Size));

        /// <summary>A non-terminating error (the cmdlet still writes it to the error stream).</summary>
        internal void Error(ErrorRecord record) => _firstError ??= record;

        internal void Summary(XFlowRunSummary summary) => _summary = summary;

        /// <summary>The failure that ended the run: it is the first error the line names.</summary>
        internal void Ended(ErrorRecord record)
        {
            _ending = record;
            Console.Error.WriteLine("XFlowDelivery: " + Message(record));
        }

        /// <summary>
        /// Prints the run's line and, on Windows, writes it to the Application log; returns the exit
        /// code, from the summary, else from the failure.
        /// </summary>
        internal int Finish(CommandInvocationIntrinsics invoke)
        {
            int exitCode = _summary?.ExitCode ?? (_ending != null ? ExitCodes.FromError(_ending) : ExitCodes.Unexpected);
            var line = Line(_summary, exitCode, _ending ?? _firstError);
            Console.Out.WriteLine(line);
            if (NativeLibraryLoader.IsWindows) WriteEvent(invoke, line, exitCode);
            return exitCode;
        }

        /// <summary>
        /// NOT RUN HERE (Windows only). One event per run, source XFlowDelivery, id 100 + exit code
        /// (docs/monitoring.md). Writing it never changes the exit code.
        /// </summary>
        private static void WriteEvent(CommandInvocationIntrinsics invoke, string line, int exitCode)
        {
            var level = exitCode == ExitCodes.Success ? "Information" : exitCode == ExitCodes.DeliveriesRefused ? "Warning" : "Error";
            try
            {
                invoke.InvokeScript(TaskScheduler.WriteEventScript, line, level, 100 + exitCode);
            }
            catch (RuntimeException ex)
            {
                // The source is registered by Register-XFlowDeliveryTask (as administrator); without
                // it the run's result still reaches Task Scheduler through the exit code.
                Console.Error.WriteLine("XFlowDelivery: could not write the event log entry: " + ex.Message);
            }
        }

        /// <param name="summary">The run's summary; null when the run did not start.</param>
        /// <param name="exitCode">What the task exits with.</param>
        /// <param name="firstError">The error the line names, or null.</param>
        internal static string Line(XFlowRunSummary? summary, int exitCode, ErrorRecord? firstError)
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
            var error = FirstLine(firstError == null ? null : Message(firstError));
            if (error != null)
            {
                line.Append(" First error: ").Append(error.Length > MaxErrorLength ? error.Substring(0, MaxErrorLength) : error);
            }
            return line.ToString();
        }

        private static string Message(ErrorRecord record) => record.Exception?.Message ?? record.ToString();

        private static string? FirstLine(string? text)
        {
            if (text == null) return null;
            var end = text.IndexOfAny(new[] { '\r', '\n' });
            return end < 0 ? text : text.Substring(0, end);
        }
    }
}
