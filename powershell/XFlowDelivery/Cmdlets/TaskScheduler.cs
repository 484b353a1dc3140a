using System;
using System.Reflection;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// NOT RUN HERE (Windows only). The Task Scheduler 2.0 COM API (Schedule.Service) by late
    /// binding: no ScheduledTasks module (absent on some Server Core setups and in constrained
    /// sessions), and the service account's password goes straight to the API, never on a command
    /// line as schtasks /RP would need.
    /// </summary>
    internal static class TaskScheduler
    {
        private const int TASK_CREATE_OR_UPDATE = 6;
        private const int TASK_LOGON_PASSWORD = 1;
        private const int TASK_LOGON_S4U = 2;

        private static object Call(object target, string method, params object?[] args) =>
            target.GetType().InvokeMember(method, BindingFlags.InvokeMethod, null, target, args)!;

        private static object Connect()
        {
            var type = Type.GetTypeFromProgID("Schedule.Service", throwOnError: true)!;
            var service = Activator.CreateInstance(type)!;
            Call(service, "Connect", null, null, null, null);
            return service;
        }

        private static object? Folder(object service, string path)
        {
            try
            {
                return Call(service, "GetFolder", path);
            }
            catch (TargetInvocationException)
            {
                return null; // ERROR_FILE_NOT_FOUND: no such folder
            }
        }

        /// <param name="taskFolder">As XFlowDeliveryTaskDefinition.TaskFolderFor gives it.</param>
        internal static bool Exists(string taskFolder, string taskName)
        {
            var folder = Folder(Connect(), taskFolder);
            if (folder == null) return false;
            try
            {
                Call(folder, "GetTask", taskName);
                return true;
            }
            catch (TargetInvocationException)
            {
                return false;
            }
        }

        /// <param name="password">null for a gMSA (name$) and for S4U.</param>
        internal static void Register(string taskFolder, string taskName, string xml, string account, string? password, string logonType)
        {
            var service = Connect();
            // CreateFolder makes every missing folder of a nested path.
            var folder = Folder(service, taskFolder)
                         ?? Call(Call(service, "GetFolder", "\\"), "CreateFolder", taskFolder.TrimStart('\\'), null);
            int logon = logonType == "S4U" ? TASK_LOGON_S4U : TASK_LOGON_PASSWORD;
            Call(folder, "RegisterTask", taskName, xml, TASK_CREATE_OR_UPDATE, account, password, logon, null);
        }

        internal static void Unregister(string taskFolder, string taskName)
        {
            var service = Connect();
            var folder = Folder(service, taskFolder);
            if (folder == null) return;
            Call(folder, "DeleteTask", taskName, 0);
        }

        /// <summary>The event source every task run writes to; creating it needs administrator rights.</summary>
        internal const string RegisterEventSourceScript =
            "if (-not [System.Diagnostics.EventLog]::SourceExists('XFlowDelivery')) { " +
            "[System.Diagnostics.EventLog]::CreateEventSource('XFlowDelivery', 'Application') }";

        /// <summary>One run's event (arguments: the line, the entry type's name, the event id).</summary>
        internal const string WriteEventScript =
            "param($line, $level, $id) [System.Diagnostics.EventLog]::WriteEntry('XFlowDelivery', $line, [System.Diagnostics.EventLogEntryType]$level, $id)";
    }
}
