using System;
using System.Management.Automation;

namespace XFlowDelivery
{
    /// <summary>
    /// The ONE mapping from a run's result to the scheduled task's exit code (docs/monitoring.md).
    /// 0 means nobody needs to act; every other code names what an administrator must look at.
    /// The task entry script (XFlowDelivery.Task.ps1) and XFlowRunSummary.ExitCode use it.
    /// </summary>
    public static class ExitCodes
    {
        public const int Success = 0;
        public const int Unexpected = 1;
        public const int Configuration = 2;
        public const int Authentication = 3;
        public const int NetworkOrServer = 4;
        public const int ImportFolder = 5;
        public const int DeliveriesRefused = 6;
        public const int ImportStalled = 7;

        /// <summary>The exit code for a run-level error with this ErrorId.</summary>
        public static int FromErrorId(string? errorId)
        {
            switch (errorId)
            {
                case "InvalidConfiguration":
                case "InsecureUrl":
                case "InvalidBaseUrl":
                case "InvalidPath":
                case "NoImportFolder":
                case "ConfigFileNotFound":
                case "ConfigFileUnreadable":
                case "InvalidConfigFile":
                case "StateFolderOnNetworkShare":
                case "InstallationConflict":
                    return Configuration;
                case "AuthenticationFailed":
                case "TokenMissing":
                case "TokenUnreadable":
                    return Authentication;
                case "ServerUnreachable":
                case "Timeout":
                case "ServerError":
                case "ProtocolError":
                case "DeadlineExceeded":
                    return NetworkOrServer;
                case "FolderNotFound":
                case "AccessDenied":
                case "DiskFull":
                case "PublishFailed":
                    return ImportFolder;
                case "InvalidDelivery":
                case "UnreadableDeliveryId":
                case "HashMismatch":
                case "InvalidContent":
                case "Quarantined":
                    return DeliveriesRefused;
                default:
                    return Unexpected; // Internal, Cancelled, anything new
            }
        }

        /// <summary>The exit code for a finished run's outcome (and its error, when it failed).</summary>
        public static int FromOutcome(string? outcome, string? errorId)
        {
            switch (outcome)
            {
                case "Succeeded":
                case "Locked": // another run is at work: nothing for anyone to do
                    return Success;
                case "CompletedWithErrors":
                    return DeliveriesRefused;
                case "ImportStalled":
                    return ImportStalled;
                case "Failed":
                    return FromErrorId(errorId);
                default:
                    return Unexpected; // Cancelled, unknown
            }
        }

        /// <summary>One line for logs and the event message: what the code means and what to do.</summary>
        public static string Describe(int exitCode)
        {
            switch (exitCode)
            {
                case Success: return "no action needed";
                case Configuration: return "configuration error: fix the configuration file or its parameters";
                case Authentication: return "authentication or token error: renew the API token or re-create the configuration as the task's account";
                case NetworkOrServer: return "network or server error: check the connection to XFlow (Test-XFlowDeliveryConnection)";
                case ImportFolder: return "import folder error: a folder is missing, not writable or full";
                case DeliveriesRefused: return "some deliveries were quarantined or refused: see Get-XFlowDeliveryStatus";
                case ImportStalled: return "an importer has stopped: files published into an import folder were not picked up in time; check that SD Løn or Prisme is importing";
                default: return "unexpected error: see the task's output and Get-XFlowDeliveryStatus";
            }
        }

        /// <summary>The exit code for an error that ended the run (a caught ErrorRecord or exception).</summary>
        public static int FromError(object? error)
        {
            var exception = error is ErrorRecord record ? record.Exception : error as Exception;
            while (exception != null)
            {
                if (exception is XFlowDeliveryException x) return FromErrorId(x.ErrorId);
                exception = exception.InnerException;
            }
            return Unexpected;
        }
    }
}
