using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using XFlowDelivery.Config;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Registers the scheduled run: a Windows scheduled task \XFlowDelivery\XFlowDelivery every 3 minutes, or a systemd service and timer on Linux.</para>
    /// <para type="description">The action starts PowerShell with a -Command that imports the newest XFlowDelivery installed for all users when registered and ends with the exit code of Invoke-XFlowDelivery -AsScheduledTask, so the task's Last Run Result is the run's exit code (docs/monitoring.md). Updating the module or removing an old version does not break the task: a run hands itself to a newer installed copy, and when the registered copy is gone the newest is found by name. Idempotent: an existing registration is left alone unless -Force. -WhatIf shows the definition without registering.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Register, "XFlowDeliveryTask", DefaultParameterSetName = AccountSet, SupportsShouldProcess = true)]
    [OutputType(typeof(XFlowDeliveryTask))]
    public sealed class RegisterXFlowDeliveryTaskCommand : XFlowCmdletBase
    {
        private const string AccountSet = "Account";
        private const string CredentialSet = "Credential";
        internal const string DefaultUnitDirectory = "/etc/systemd/system";

        /// <summary>The configuration file the task runs with (New-XFlowDeliveryConfig).</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string ConfigPath { get; set; } = null!;

        /// <summary>The account the task runs as: a group managed service account (DOMAIN\name$, no password), an account for -LogonType S4U, or on Linux the service user.</summary>
        [Parameter(Mandatory = true, ParameterSetName = AccountSet)]
        [ValidateNotNullOrEmpty]
        public string Account { get; set; } = null!;

        /// <summary>A domain user and its password (Windows, -LogonType Password): stored by Task Scheduler.</summary>
        [Parameter(Mandatory = true, ParameterSetName = CredentialSet)]
        [ValidateNotNull]
        [Credential]
        public PSCredential Credential { get; set; } = null!;

        /// <summary>Password (default; a stored password or a gMSA) or S4U (no stored password, but no network shares).</summary>
        [Parameter]
        [ValidateSet("Password", "S4U")]
        public string LogonType { get; set; } = "Password";

        /// <summary>Minutes between runs (default 3).</summary>
        [Parameter]
        [ValidateRange(1, 60)]
        public int IntervalMinutes { get; set; } = 3;

        /// <summary>A run is stopped after this many minutes (default 15; Task Scheduler's own default is 72 hours).</summary>
        [Parameter]
        [ValidateRange(1, 1440)]
        public int ExecutionTimeLimitMinutes { get; set; } = 15;

        /// <summary>Full path of pwsh.exe or powershell.exe (Linux: pwsh) the task starts; default: the one running this command.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? PowerShellPath { get; set; }

        /// <summary>Linux: where the units are written (default /etc/systemd/system; only there are they enabled with systemctl).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? UnitDirectory { get; set; }

        /// <summary>The task's name (Windows: \XFlowDelivery\&lt;name&gt;; Linux: the units' name), one per installation. Default: the name this installation had; else XFlowDelivery unless another installation has it; else XFlowDelivery-&lt;configuration file name&gt;.</summary>
        [Parameter]
        [ValidatePattern(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
        public string? TaskName { get; set; }

        /// <summary>Windows only: the Task Scheduler folder the task goes into (default \XFlowDelivery\; created when missing), such as \Kommune\XFlowDelivery\, or a folder of its own for a trial registration. Give the same -TaskPath to Unregister-XFlowDeliveryTask.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string TaskPath { get; set; } = XFlowDeliveryTaskDefinition.TaskFolder + "\\";

        /// <summary>Replace an existing registration.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            var taskFolder = TaskFolderFrom(TaskPath);
            var config = LoadConfig(ConfigPath, out var configFile);
            var account = ParameterSetName == CredentialSet ? Credential.UserName.TrimStart('\\') : Account;
            bool windows = NativeLibraryLoader.IsWindows;

            if (LogonType == "S4U")
            {
                var unc = new[] { config.SdLoenPath, config.PrismePath, config.StatePath, configFile }
                    .FirstOrDefault(p => p != null && (p.StartsWith("\\\\", StringComparison.Ordinal) || p.StartsWith("//", StringComparison.Ordinal)));
                if (unc != null)
                {
                    Fail("S4UWithNetworkPath", ErrorCategory.InvalidArgument,
                        $"-LogonType S4U cannot reach network shares, and '{unc}' is one. Use -LogonType Password with -Credential, or a gMSA (-Account DOMAIN\\name$).", unc);
                }
                if (config.Token?.Protection == nameof(TokenProtection.DpapiCurrentUser))
                {
                    // An S4U logon has no password, so the account's DPAPI user key stays locked.
                    Fail("S4UWithCurrentUserToken", ErrorCategory.InvalidArgument,
                        $"-LogonType S4U cannot decrypt a token protected with DPAPI scope CurrentUser (as in '{configFile}'): an S4U logon has no password to unlock the account's DPAPI key, so every run would end with exit code 3 (TokenUnreadable). " +
                        $"Protect the token for this computer instead, as an administrator: New-XFlowDeliveryConfig -Path '{configFile}' -Scope LocalMachine -ServiceAccount {account} -Force (with the other settings again); " +
                        "or register with -LogonType Password (-Credential, or a gMSA).", configFile);
                }
            }
            bool gmsa = account.EndsWith("$", StringComparison.Ordinal);
            if (windows && LogonType == "Password" && ParameterSetName == AccountSet && !gmsa)
            {
                Fail("CredentialRequired", ErrorCategory.InvalidArgument,
                    $"-LogonType Password for '{account}' needs its password: use -Credential, a group managed service account (DOMAIN\\name$), or -LogonType S4U.", account);
            }

            var entries = Installations.Read();
            var taskName = TaskName ?? DefaultTaskName(configFile, entries);
            var installation = InstallationEntry.From(config, configFile, taskName);
            if (Installations.FindConflict(installation, entries) is XFlowDeliveryException conflict)
            {
                Fail(conflict);
            }
            var installed = InstalledModule.All(Environment.GetEnvironmentVariable("PSModulePath"));
            var settings = new XFlowTaskSettings
            {
                TaskName = taskName,
                TaskFolder = taskFolder,
                PowerShellPath = FindPowerShell(windows),
                ConfigPath = configFile,
                ModuleAssemblyPath = AssemblyToRun(installed),
                WorkingDirectory = Path.GetDirectoryName(configFile)!,
                Account = account,
                LogonType = LogonType,
                IntervalMinutes = IntervalMinutes,
                ExecutionTimeLimitMinutes = ExecutionTimeLimitMinutes,
                StartBoundary = DateTime.Now.Date,
            };
            WarnIfNotFoundByName(account, installed);
            var task = windows ? RegisterWindows(settings, gmsa) : RegisterSystemd(settings);
            if (task.Registered) Record(installation);
            WriteObject(task);
        }

        /// <summary>
        /// The name this installation was registered under before; else XFlowDelivery, as a single
        /// installation always had, unless another installation has it; else XFlowDelivery-&lt;the
        /// configuration file's name&gt; (test.json: XFlowDelivery-test).
        /// </summary>
        internal static string DefaultTaskName(string configFile, System.Collections.Generic.List<InstallationEntry> entries)
        {
            if (Installations.ForConfig(entries, configFile)?.TaskName is string own) return own;
            bool taken = entries.Exists(e => string.Equals(e.TaskName, XFlowDeliveryTaskDefinition.TaskName, StringComparison.OrdinalIgnoreCase));
            if (!taken) return XFlowDeliveryTaskDefinition.TaskName;
            var suffix = new System.Text.StringBuilder();
            foreach (var c in Path.GetFileNameWithoutExtension(configFile))
            {
                suffix.Append((c < 128 && char.IsLetterOrDigit(c)) || c == '.' || c == '_' || c == '-' ? c : '-');
            }
            var derived = XFlowDeliveryTaskDefinition.TaskName + "-" + suffix;
            return derived.Length > 64 ? derived.Substring(0, 64) : derived;
        }

        private void Record(InstallationEntry installation)
        {
            try
            {
                Installations.Record(installation);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                WriteWarning($"The installation could not be recorded in '{Installations.Directory}' ({ex.Message}): other installations on this server cannot see which folders it uses. Run this command as administrator.");
            }
        }

        /// <summary>
        /// The task runs the newest copy installed for all users, and finds one by name when that
        /// is gone (XFlowDeliveryTaskDefinition.EntryCommand): warn when this copy lies outside
        /// PSModulePath, or only in this user's own module folder.
        /// </summary>
        private void WarnIfNotFoundByName(string account, List<InstalledModule> installed)
        {
            var own = InstalledModule.At(installed, typeof(RegisterXFlowDeliveryTaskCommand).Assembly.Location);
            string fix = "Install it for all users (Install-PSResource XFlowDelivery -Scope AllUsers, or Install-Module XFlowDelivery -Scope AllUsers).";
            if (own == null)
            {
                WriteWarning($"This XFlowDelivery was imported from '{NativeLibraryLoader.ModuleDirectory}', which is not under PSModulePath: unless a copy is installed there, the task runs this one while it stays there, and finds none by name after it is moved or removed. {fix}");
            }
            else if (IsUnderProfile(own.Entry) && !string.Equals(account, Environment.UserName, StringComparison.OrdinalIgnoreCase)
                     && !account.EndsWith("\\" + Environment.UserName, StringComparison.OrdinalIgnoreCase))
            {
                WriteWarning($"XFlowDelivery is installed in '{own.Entry}', a module folder of the current user only: the task's account '{account}' will not find it. {fix}");
            }
        }

        /// <summary>
        /// The assembly the task imports first: the newest copy installed for all users (module
        /// folders under a user profile are not the task account's), else this one.
        /// </summary>
        private static string AssemblyToRun(List<InstalledModule> installed) =>
            InstalledModule.Newest(installed.FindAll(m => !IsUnderProfile(m.Entry)))?.AssemblyPath
            ?? typeof(RegisterXFlowDeliveryTaskCommand).Assembly.Location;

        private static bool IsUnderProfile(string path)
        {
            var profile = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return profile.Length > 0 && path.StartsWith(profile.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar,
                NativeLibraryLoader.IsWindows ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
        }

        private string FindPowerShell(bool windows)
        {
            string path = PowerShellPath != null
                ? ResolvePath(PowerShellPath, nameof(PowerShellPath))
                : Path.Combine(
                    SessionState.PSVariable.GetValue("PSHOME")?.ToString() ?? "",
                    !windows ? "pwsh" : (SessionState.PSVariable.GetValue("PSEdition")?.ToString() == "Desktop" ? "powershell.exe" : "pwsh.exe"));
            if (!File.Exists(path))
            {
                Fail("PowerShellNotFound", ErrorCategory.ObjectNotFound,
                    $"'{path}' does not exist. Give the full path of pwsh or powershell.exe with -PowerShellPath.", path);
            }
            return path;
        }

        private XFlowDeliveryTask Describe(XFlowTaskSettings s, string name, string scheduler, string location, string definition) => new XFlowDeliveryTask
        {
            Name = name,
            Scheduler = scheduler,
            Account = s.Account,
            LogonType = s.LogonType,
            IntervalMinutes = s.IntervalMinutes,
            ConfigPath = s.ConfigPath,
            Location = location,
            Definition = definition,
        };

        // NOT RUN HERE (Windows only).
        private XFlowDeliveryTask RegisterWindows(XFlowTaskSettings s, bool gmsa)
        {
            var xml = XFlowDeliveryTaskDefinition.ToTaskSchedulerXml(s);
            var path = XFlowDeliveryTaskDefinition.TaskPathFor(s.TaskFolder, s.TaskName);
            var task = Describe(s, path, "TaskScheduler", path, xml);
            if (!ShouldProcess($"Register scheduled task {task.Name} as {s.Account} ({s.LogonType}), every {s.IntervalMinutes} minutes, from this definition:\n{xml}",
                    $"Register scheduled task {task.Name} as {s.Account}?", "Register-XFlowDeliveryTask"))
            {
                return task;
            }
            try
            {
                if (TaskScheduler.Exists(s.TaskFolder, s.TaskName) && !Force)
                {
                    WriteWarning($"The scheduled task {task.Name} already exists and was left as it is; use -Force to replace it.");
                    return task;
                }
                string? password = ParameterSetName == CredentialSet && !gmsa ? Credential.GetNetworkCredential().Password : null;
                TaskScheduler.Register(s.TaskFolder, s.TaskName, xml, s.Account, password, s.LogonType);
                task.Registered = true;
            }
            catch (Exception ex) when (ex is System.Reflection.TargetInvocationException || ex is System.Runtime.InteropServices.COMException || ex is UnauthorizedAccessException)
            {
                var inner = ex.InnerException ?? ex;
                Fail("TaskRegistrationFailed", ErrorCategory.PermissionDenied,
                    $"Registering {task.Name} failed: {inner.Message} Run as administrator, and check the account name and password.", task.Name);
            }
            try
            {
                InvokeCommand.InvokeScript(TaskScheduler.RegisterEventSourceScript);
            }
            catch (RuntimeException ex)
            {
                WriteWarning("The event source 'XFlowDelivery' could not be registered (administrator rights are needed): " + ex.Message +
                             " Runs still report through their exit code.");
            }
            return task;
        }

        private XFlowDeliveryTask RegisterSystemd(XFlowTaskSettings s)
        {
            var directory = UnitDirectory == null ? DefaultUnitDirectory : ResolvePath(UnitDirectory, nameof(UnitDirectory));
            var service = XFlowDeliveryTaskDefinition.ToSystemdService(s);
            var timer = XFlowDeliveryTaskDefinition.ToSystemdTimer(s);
            var serviceUnit = XFlowDeliveryTaskDefinition.ServiceUnitFor(s.TaskName);
            var timerUnit = XFlowDeliveryTaskDefinition.TimerUnitFor(s.TaskName);
            var servicePath = Path.Combine(directory, serviceUnit);
            var timerPath = Path.Combine(directory, timerUnit);
            var definition = $"# {servicePath}\n{service}\n# {timerPath}\n{timer}";
            var task = Describe(s, timerUnit, "systemd", directory, definition);
            if (!ShouldProcess($"Write {servicePath} and {timerPath} (as {s.Account}, every {s.IntervalMinutes} minutes):\n{definition}",
                    $"Write and enable {timerUnit}?", "Register-XFlowDeliveryTask"))
            {
                return task;
            }
            if (!Directory.Exists(directory))
            {
                Fail("FolderNotFound", ErrorCategory.ObjectNotFound, $"-UnitDirectory '{directory}' does not exist.", directory);
            }
            bool exists = File.Exists(servicePath) || File.Exists(timerPath);
            bool same = exists && File.Exists(servicePath) && File.Exists(timerPath)
                        && File.ReadAllText(servicePath) == service && File.ReadAllText(timerPath) == timer;
            if (exists && !same && !Force)
            {
                WriteWarning($"{servicePath} or {timerPath} already exists with another definition and was left as it is; use -Force to replace it.");
                return task;
            }
            try
            {
                File.WriteAllText(servicePath, service);
                File.WriteAllText(timerPath, timer);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                Fail("TaskRegistrationFailed", ErrorCategory.PermissionDenied, $"Writing the units into '{directory}' failed: {ex.Message} Run as root.", directory);
            }
            task.Registered = true;
            if (directory == DefaultUnitDirectory)
            {
                Systemctl("daemon-reload");
                Systemctl("enable --now " + timerUnit);
            }
            else
            {
                WriteWarning($"The units were written to '{directory}', not {DefaultUnitDirectory}: link or copy them there, then run systemctl daemon-reload and systemctl enable --now {timerUnit}.");
            }
            return task;
        }

        internal static string? RunSystemctl(string arguments)
        {
            try
            {
                return ProcessRunner.Run("systemctl", arguments, out var output) == 0 ? null : output;
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                return ex.Message; // no systemctl on this machine
            }
        }

        private void Systemctl(string arguments)
        {
            var failure = RunSystemctl(arguments);
            if (failure != null)
            {
                Fail("SystemctlFailed", ErrorCategory.InvalidOperation, $"systemctl {arguments} failed: {failure}", arguments);
            }
        }
    }
}
