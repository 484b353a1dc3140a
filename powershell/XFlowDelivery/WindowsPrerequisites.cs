using System;
using System.Collections.Generic;
using System.Linq;

namespace XFlowDelivery
{
    /// <summary>
    /// What Windows needs besides the engine, judged from facts the cmdlet gathers (registry,
    /// Get-ExecutionPolicy, Zone.Identifier streams). The judgements are pure, so they are tested
    /// on every platform; gathering the facts is Windows-only (Test-XFlowDeliveryConnection).
    /// </summary>
    internal static class WindowsPrerequisites
    {
        /// <summary>The Release value of .NET Framework 4.7.2 (HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full).</summary>
        internal const int Release472 = 461808;

        // Microsoft's published table, the lowest Release value of each version. No ValueTuple:
        // it needs a facade on .NET Framework before 4.7.
        private static readonly int[] MinimumRelease = { 533320, 528040, 461808, 461308, 460798, 394802, 394254, 393295, 379893, 378675, 378389 };
        private static readonly string[] Version = { "4.8.1", "4.8", "4.7.2", "4.7.1", "4.7", "4.6.2", "4.6.1", "4.6", "4.5.2", "4.5.1", "4.5" };

        /// <summary>The .NET Framework version a Release value means.</summary>
        internal static string FrameworkVersion(int release)
        {
            for (int i = 0; i < MinimumRelease.Length; i++)
            {
                if (release >= MinimumRelease[i]) return Version[i];
            }
            return "older than 4.5";
        }

        /// <summary>
        /// The execution policy the scheduled task runs under. Its action is `-File` without
        /// -ExecutionPolicy, as the service account: Group Policy (MachinePolicy, then UserPolicy)
        /// wins, then the account's CurrentUser scope (normally Undefined for a service account),
        /// then LocalMachine; all Undefined means RemoteSigned on Windows Server.
        /// </summary>
        internal static string TaskPolicy(string machinePolicy, string userPolicy, string localMachine)
        {
            foreach (var policy in new[] { machinePolicy, userPolicy, localMachine })
            {
                if (!string.IsNullOrEmpty(policy) && !policy.Equals("Undefined", StringComparison.OrdinalIgnoreCase)) return policy;
            }
            return "RemoteSigned";
        }

        /// <summary>
        /// Whether the task can load the module under <paramref name="policy"/>, given the module
        /// files that carry the mark of the web (a Zone.Identifier stream: copied out of a
        /// downloaded ZIP). Returns null when it can, otherwise why not; <paramref name="remedy"/> says
        /// what to do (also when marked files would only matter under a stricter policy).
        /// </summary>
        internal static string? ModuleLoadProblem(string policy, IReadOnlyList<string> markedFiles, string moduleDirectory, out string? remedy)
        {
            string unblock = $"Unblock the module's files once, as administrator: Get-ChildItem -LiteralPath '{moduleDirectory}' -Recurse | Unblock-File";
            switch (policy.ToLowerInvariant())
            {
                case "restricted":
                    remedy = "Set-ExecutionPolicy RemoteSigned -Scope LocalMachine (or the equivalent Group Policy).";
                    return "the execution policy for the task is Restricted: no script runs, not even the task's entry script";
                case "allsigned":
                    remedy = "Sign the module's files with a code-signing certificate the server trusts (Set-AuthenticodeSignature), or use RemoteSigned for the task.";
                    return "the execution policy for the task is AllSigned: the module's .ps1, .psd1 and .ps1xml files must carry a trusted signature";
                case "remotesigned" when markedFiles.Count > 0:
                    remedy = unblock + " (or sign them).";
                    return $"{markedFiles.Count} of the module's files carry the mark of the web (Zone.Identifier), e.g. '{markedFiles[0]}', " +
                           "and the task runs under RemoteSigned: Windows refuses to load them and the task fails without a log line";
                default:
                    remedy = markedFiles.Count > 0 ? unblock : null;
                    return null;
            }
        }

        /// <summary>The files in a list of Zone.Identifier-bearing paths, relative to the module folder.</summary>
        internal static List<string> Relative(IEnumerable<string> paths, string moduleDirectory) =>
            paths.Select(p => p.StartsWith(moduleDirectory, StringComparison.OrdinalIgnoreCase) ? p.Substring(moduleDirectory.Length).TrimStart('\\', '/') : p).ToList();
    }
}
