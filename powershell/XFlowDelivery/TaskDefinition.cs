using System;
using System.Globalization;
using System.IO;
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
        /// <summary>The XFlowDelivery.dll the task imports first (EntryCommand): the newest installed when registered; this one by default.</summary>
        public string ModuleAssemblyPath { get; set; } = typeof(XFlowTaskSettings).Assembly.Location;
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
        /// What the task runs: the assembly Register-XFlowDeliveryTask found as the newest installed
        /// (<paramref name="assemblyPath"/>) imported, then Invoke-XFlowDelivery -AsScheduledTask,
        /// whose exit code is the task's. That run first looks for a newer installed copy and, if
        /// there is one, hands the run to it (TaskHandover), so an update takes effect at the next
        /// run. If the assembly is gone (an old version uninstalled), <see cref="LookupScript"/>
        /// finds the newest installed one by name instead, so Update-PSResource and removing an old
        /// version never break the task. A module that cannot be found or imported is reported
        /// like a run that did not start: a line, exit code 1 and (on Windows) the event.
        /// Every statement compiled here is paid by each of the 480 runs a day in a fresh process
        /// (docs/benchmarks.md, seventh round): the assembly, not the manifest, nor an entry
        /// script; no .NET member, since the first a fresh PowerShell compiles costs it about 25 ms
        /// and member access costs its compile even where it never runs: the lookup and the event
        /// write are text that Invoke-Expression compiles only when needed. No double quotes
        /// inside: the text travels in one double-quoted argument on Windows and in systemd.
        /// </summary>
        public static string EntryCommand(string configPath, string assemblyPath) =>
            "try { try { Import-Module -Name " + PowerShellQuote(assemblyPath) + " -ErrorAction Stop } " +
            "catch { Invoke-Expression " + PowerShellQuote(LookupScript) + " } " +
            "} catch { $line = 'XFlowDelivery run did not start: the module could not be found or imported; exit code 1. First error: ' + $_; $line; " +
            "if ($IsWindows -ne $false) { Invoke-Expression " + PowerShellQuote(ImportFailureEventScript) + " }; exit 1 }; " +
            "exit (Invoke-XFlowDelivery -ConfigPath " + PowerShellQuote(configPath) + " -AsScheduledTask)";

        /// <summary>
        /// Imports the newest XFlowDelivery installed where this PowerShell finds modules: the
        /// highest version folder under an XFlowDelivery folder in any PSModulePath entry, one
        /// without a version folder counting as 0.0 (as <see cref="InstalledModule"/> finds them);
        /// throws when there is none. PSModulePath's separator is this platform's, where the task
        /// is registered.
        /// </summary>
        internal static readonly string LookupScript =
            "$dll = $null; $newest = $null; " +
            "foreach ($root in $env:PSModulePath -split '" + Path.PathSeparator + "') { " +
            "if (-not $root -or -not [IO.Directory]::Exists($root + '/XFlowDelivery')) { continue }; " +
            "foreach ($candidate in [IO.Directory]::GetFiles($root + '/XFlowDelivery', 'XFlowDelivery.dll', 'AllDirectories')) { " +
            "$version = $null; if (-not [Version]::TryParse([IO.Path]::GetFileName([IO.Path]::GetDirectoryName($candidate)), [ref]$version)) { $version = [Version]'0.0' }; " +
            "if ($null -eq $newest -or $version -gt $newest) { $dll = $candidate; $newest = $version } } }; " +
            "if ($null -eq $dll) { throw 'The XFlowDelivery module is not installed where this account''s PowerShell finds modules (PSModulePath): install it for all users.' }; " +
            "Import-Module -Name $dll -ErrorAction Stop";

        /// <summary>
        /// NOT RUN HERE (Windows only; Windows PowerShell 5.1 has no $IsWindows, hence the test
        /// against $false above). The event of a run that did not start: id 101, the line in $line,
        /// written as every run's is (TaskScheduler.WriteEventScript). Writing it never changes the
        /// exit code.
        /// </summary>
        internal const string ImportFailureEventScript =
            "try { & { " + Cmdlets.TaskScheduler.WriteEventScript + " } $line 'Error' 101 } " +
            "catch { [Console]::Error.WriteLine('XFlowDelivery: could not write the event log entry: ' + $_.Exception.Message) }";

        /// <summary>The arguments after the executable (Task Scheduler's Arguments).</summary>
        public static string Arguments(XFlowTaskSettings s) =>
            "-NoProfile -NonInteractive -Command " + Quote(EntryCommand(s.ConfigPath, s.ModuleAssemblyPath));

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
                .Append(" -NoProfile -NonInteractive -Command ").Append(SystemdQuote(EntryCommand(s.ConfigPath, s.ModuleAssemblyPath))).Append('\n');
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
