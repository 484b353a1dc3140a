using System;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Xml.Linq;

namespace XFlowDelivery
{
    /// <summary>What the scheduled task runs, as whom and how often. Register-XFlowDeliveryTask fills it.</summary>
    public sealed class XFlowTaskSettings
    {
        /// <summary>The task's name in its Task Scheduler folder (Windows) and its units' name (Linux): one per installation.</summary>
        public string TaskName { get; set; } = XFlowDeliveryTaskDefinition.TaskName;
        /// <summary>The Task Scheduler folder (Windows), as TaskFolderFor gives it: \XFlowDelivery unless -TaskPath.</summary>
        public string TaskFolder { get; set; } = XFlowDeliveryTaskDefinition.TaskFolder;
        /// <summary>Full path of pwsh.exe / powershell.exe (Windows) or pwsh (Linux).</summary>
        public string PowerShellPath { get; set; } = "";
        public string ConfigPath { get; set; } = "";
        public string WorkingDirectory { get; set; } = "";
        /// <summary>DOMAIN\user, or DOMAIN\gmsa$ for a group managed service account.</summary>
        public string Account { get; set; } = "";
        /// <summary>Password (a stored password, or a gMSA) or S4U (no network access).</summary>
        public string LogonType { get; set; } = "Password";
        public int IntervalMinutes { get; set; } = 3;
        public int ExecutionTimeLimitMinutes { get; set; } = 15;
        /// <summary>When the repetition starts (local time of the server).</summary>
        public DateTime StartBoundary { get; set; } = DateTime.Today;
    }

    /// <summary>
    /// The task definitions, as text, from one place so that tests can inspect them on any OS:
    /// Task Scheduler XML (Windows) and a systemd service + timer pair (Linux).
    /// </summary>
    public static class XFlowDeliveryTaskDefinition
    {
        /// <summary>Task Scheduler folder and name: \XFlowDelivery\XFlowDelivery.</summary>
        public const string TaskFolder = "\\XFlowDelivery";
        public const string TaskName = "XFlowDelivery";
        public const string TaskPath = TaskFolder + "\\" + TaskName;
        public const string ServiceUnit = "xflow-delivery.service";
        public const string TimerUnit = "xflow-delivery.timer";

        /// <summary>The Task Scheduler path of the task named <paramref name="taskName"/> in <paramref name="taskFolder"/> (\ is the root).</summary>
        public static string TaskPathFor(string taskFolder, string taskName) => (taskFolder == "\\" ? "" : taskFolder) + "\\" + taskName;

        /// <summary>
        /// A Task Scheduler folder as -TaskPath takes it (\Folder\, \Folder, Folder\Sub, \ for the
        /// root) in the one form the Task Scheduler API is given: a leading backslash and none at the
        /// end. Null when it cannot name a folder: an empty segment, . or .. (the API refuses both),
        /// or a character a file name cannot hold (Task Scheduler keeps each folder as a directory
        /// under %SystemRoot%\System32\Tasks).
        /// </summary>
        public static string? TaskFolderFor(string taskPath)
        {
            var trimmed = taskPath.Trim();
            if (trimmed == "\\") return "\\";
            if (trimmed.StartsWith("\\", StringComparison.Ordinal)) trimmed = trimmed.Substring(1);
            if (trimmed.EndsWith("\\", StringComparison.Ordinal)) trimmed = trimmed.Substring(0, trimmed.Length - 1);
            var segments = trimmed.Split('\\');
            foreach (var segment in segments)
            {
                if (segment.Trim().Length == 0 || segment == "." || segment == ".." || segment.IndexOfAny(InvalidFolderChars) >= 0) return null;
            }
            return "\\" + string.Join("\\", segments);
        }

        private static readonly char[] InvalidFolderChars = "<>:\"/|?*".Concat(Enumerable.Range(0, 32).Select(i => (char)i)).ToArray();

        /// <summary>systemd unit names: XFlowDelivery → xflow-delivery, XFlowDelivery-test → xflow-delivery-test, Prod → xflow-delivery-prod.</summary>
        public static string UnitBaseName(string taskName)
        {
            var lower = taskName.ToLowerInvariant();
            var rest = lower.StartsWith("xflowdelivery", StringComparison.Ordinal) ? lower.Substring("xflowdelivery".Length) : "-" + lower;
            var text = new StringBuilder("xflow-delivery");
            foreach (var c in rest)
            {
                bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (keep) text.Append(c);
                else if (text[text.Length - 1] != '-') text.Append('-');
            }
            return text.ToString().TrimEnd('-');
        }

        public static string ServiceUnitFor(string taskName) => UnitBaseName(taskName) + ".service";
        public static string TimerUnitFor(string taskName) => UnitBaseName(taskName) + ".timer";

        private static readonly XNamespace Ns = "http://schemas.microsoft.com/windows/2004/02/mit/task";

        /// <summary>
        /// What the task runs: the entry script XFlowDelivery.Task.ps1 of the newest XFlowDelivery
        /// installed where the task's PowerShell finds modules (the highest version folder under an
        /// XFlowDelivery folder in any PSModulePath entry; one without a version folder counts as
        /// 0.0), looked up at every run, so that Update-PSResource and removing an old version never
        /// break the task (a path into a version folder would). Found with .NET calls, not
        /// Get-Module -ListAvailable | Sort-Object | Select-Object and Join-Path: those read every
        /// manifest and load two more modules, about 160 ms of every run (docs/benchmarks.md). The
        /// explicit exit passes the entry script's exit code through unchanged (a -Command ending
        /// without one reports only 0 or 1), and a module that cannot be found or started is exit
        /// code 1, never 0. No double quotes inside: the text travels in one double-quoted argument
        /// on Windows and in systemd.
        /// </summary>
        public static string EntryCommand(string configPath) =>
            "try { $task = $null; $newest = $null; " +
            "foreach ($root in $env:PSModulePath.Split([IO.Path]::PathSeparator)) { " +
            "$folder = $root + '/XFlowDelivery'; " +
            "if (-not $root -or -not [IO.Directory]::Exists($folder)) { continue }; " +
            "foreach ($candidate in [IO.Directory]::GetFiles($folder, 'XFlowDelivery.Task.ps1', 'AllDirectories')) { " +
            "$version = $null; " +
            "if (-not [Version]::TryParse([IO.Path]::GetFileName([IO.Path]::GetDirectoryName($candidate)), [ref]$version)) { $version = [Version]'0.0' }; " +
            "if ($null -eq $newest -or $version -gt $newest) { $task = $candidate; $newest = $version } } }; " +
            "if ($null -eq $task) { throw 'The XFlowDelivery module is not installed where this account''s PowerShell finds modules (PSModulePath): install it for all users.' }; " +
            "& $task -ConfigPath " + PowerShellQuote(configPath) +
            " } catch { [Console]::Error.WriteLine('XFlowDelivery: ' + $_); exit 1 }; exit $LASTEXITCODE";

        /// <summary>The arguments after the executable (Task Scheduler's Arguments).</summary>
        public static string Arguments(XFlowTaskSettings s) =>
            "-NoProfile -NonInteractive -Command " + Quote(EntryCommand(s.ConfigPath));

        /// <summary>Task Scheduler 1.2 XML (Windows Server 2008 R2 and later).</summary>
        public static string ToTaskSchedulerXml(XFlowTaskSettings s)
        {
            XElement E(string name, params object[] content) => new XElement(Ns + name, content);
            var doc = new XDocument(
                E("Task", new XAttribute("version", "1.2"),
                    E("RegistrationInfo",
                        E("Author", "XFlowDelivery"),
                        E("Description", "Fetches XFlow deliveries into the SD Løn and Prisme import folders. Exit codes: see docs/monitoring.md of the XFlowDelivery module."),
                        E("URI", TaskPathFor(s.TaskFolder, s.TaskName))),
                    E("Triggers",
                        E("TimeTrigger",
                            // No Duration in Repetition: it repeats without end.
                            E("Repetition",
                                E("Interval", "PT" + s.IntervalMinutes.ToString(CultureInfo.InvariantCulture) + "M"),
                                E("StopAtDurationEnd", "false")),
                            E("StartBoundary", s.StartBoundary.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture)),
                            E("Enabled", "true"))),
                    E("Principals",
                        E("Principal", new XAttribute("id", "Author"),
                            E("UserId", s.Account),
                            E("LogonType", s.LogonType),
                            E("RunLevel", "LeastPrivilege"))),
                    E("Settings",
                        E("MultipleInstancesPolicy", "IgnoreNew"),
                        E("DisallowStartIfOnBatteries", "false"),
                        E("StopIfGoingOnBatteries", "false"),
                        E("AllowHardTerminate", "true"),
                        E("StartWhenAvailable", "true"),
                        E("RunOnlyIfNetworkAvailable", "false"),
                        E("IdleSettings", E("StopOnIdleEnd", "false"), E("RestartOnIdle", "false")),
                        E("AllowStartOnDemand", "true"),
                        E("Enabled", "true"),
                        E("Hidden", "false"),
                        E("RunOnlyIfIdle", "false"),
                        E("WakeToRun", "false"),
                        E("ExecutionTimeLimit", "PT" + s.ExecutionTimeLimitMinutes.ToString(CultureInfo.InvariantCulture) + "M"),
                        E("Priority", "7")),
                    E("Actions", new XAttribute("Context", "Author"),
                        E("Exec",
                            E("Command", s.PowerShellPath),
                            E("Arguments", Arguments(s)),
                            E("WorkingDirectory", s.WorkingDirectory)))));
            return doc.Declaration + doc.ToString();
        }

        /// <summary>The systemd service: one oneshot run; its exit code is the run's (docs/monitoring.md).</summary>
        public static string ToSystemdService(XFlowTaskSettings s)
        {
            var text = new StringBuilder();
            text.Append("[Unit]\n");
            text.Append("Description=XFlowDelivery: fetch XFlow deliveries into the SD Løn and Prisme import folders\n");
            text.Append("Wants=network-online.target\nAfter=network-online.target\n\n");
            text.Append("[Service]\nType=oneshot\n");
            text.Append("User=").Append(s.Account).Append('\n');
            text.Append("WorkingDirectory=").Append(s.WorkingDirectory.Replace("%", "%%")).Append('\n');
            text.Append("ExecStart=").Append(SystemdQuote(s.PowerShellPath))
                .Append(" -NoProfile -NonInteractive -Command ").Append(SystemdQuote(EntryCommand(s.ConfigPath))).Append('\n');
            text.Append("TimeoutStartSec=").Append(s.ExecutionTimeLimitMinutes.ToString(CultureInfo.InvariantCulture)).Append("min\n");
            return text.ToString();
        }

        /// <summary>
        /// The timer: every IntervalMinutes after the last start. A oneshot service that is still
        /// running is not started again (the systemd equivalent of IgnoreNew).
        /// </summary>
        public static string ToSystemdTimer(XFlowTaskSettings s)
        {
            var minutes = s.IntervalMinutes.ToString(CultureInfo.InvariantCulture);
            return "[Unit]\nDescription=Run XFlowDelivery every " + minutes + " minutes\n\n" +
                   "[Timer]\nOnBootSec=1min\nOnUnitActiveSec=" + minutes + "min\nAccuracySec=10s\nUnit=" + ServiceUnitFor(s.TaskName) + "\n\n" +
                   "[Install]\nWantedBy=timers.target\n";
        }

        // Windows command line: paths cannot contain '"', and the entry command has none and does
        // not end with '\'.
        private static string Quote(string value) => "\"" + value + "\"";

        // A PowerShell single-quoted string: nothing inside is expanded; a quote is doubled
        // (PowerShell also reads the typographic single quotes as quotes).
        private static string PowerShellQuote(string value) =>
            "'" + value.Replace("'", "''").Replace("\u2018", "\u2018\u2018").Replace("\u2019", "\u2019\u2019")
                       .Replace("\u201A", "\u201A\u201A").Replace("\u201B", "\u201B\u201B") + "'";

        private static string SystemdQuote(string value) => "\"" + SystemdEscape(value).Replace("\"", "\\\"") + "\"";

        // systemd expands % specifiers and $VARIABLES in Exec lines and treats \ as an escape.
        private static string SystemdEscape(string value) =>
            value.Replace("\\", "\\\\").Replace("%", "%%").Replace("$", "$$");
    }
}
