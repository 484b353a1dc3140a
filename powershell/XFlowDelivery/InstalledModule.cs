using System;
using System.Collections.Generic;
using System.IO;

namespace XFlowDelivery
{
    /// <summary>
    /// A copy of XFlowDelivery installed where PowerShell finds modules, as the task's command line
    /// finds one (XFlowDeliveryTaskDefinition.EntryCommand): XFlowDelivery.dll in a version folder
    /// under an XFlowDelivery folder of a PSModulePath entry, or in that folder itself (version 0.0).
    /// </summary>
    internal sealed class InstalledModule
    {
        private InstalledModule(string assemblyPath)
        {
            AssemblyPath = assemblyPath;
            Version = VersionOf(assemblyPath);
        }

        internal string AssemblyPath { get; }

        internal Version Version { get; }

        /// <summary>Every copy in PSModulePath order; an entry that cannot be read is skipped.</summary>
        internal static List<InstalledModule> All(string? psModulePath, Func<string, bool>? skipEntry = null)
        {
            var found = new List<InstalledModule>();
            foreach (var entry in (psModulePath ?? "").Split(new[] { Path.PathSeparator }, StringSplitOptions.RemoveEmptyEntries))
            {
                if (skipEntry != null && skipEntry(entry)) continue;
                try
                {
                    foreach (var assembly in Directory.GetFiles(Path.Combine(entry, "XFlowDelivery"), "XFlowDelivery.dll", SearchOption.AllDirectories))
                    {
                        found.Add(new InstalledModule(assembly));
                    }
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is ArgumentException || ex is NotSupportedException)
                {
                    // Missing (DirectoryNotFoundException is an IOException), unreadable or not a path.
                }
            }
            return found;
        }

        /// <summary>The highest version; of equal ones the first in PSModulePath order. Null when there is none.</summary>
        internal static InstalledModule? Newest(List<InstalledModule> modules)
        {
            InstalledModule? newest = null;
            foreach (var m in modules)
            {
                if (newest == null || m.Version > newest.Version) newest = m;
            }
            return newest;
        }

        /// <summary>Its folder's name as a version; 0.0 when that is no version (no version folder).</summary>
        internal static Version VersionOf(string assemblyPath) =>
            Version.TryParse(Path.GetFileName(Path.GetDirectoryName(assemblyPath)), out var version) ? version : new Version(0, 0);

        /// <summary>
        /// A newer copy than the one at <paramref name="ownPath"/>, if that one is itself installed
        /// in PSModulePath; null otherwise. A copy loaded from elsewhere (a build folder, an explicit
        /// path) is never replaced.
        /// </summary>
        internal static InstalledModule? NewerThan(string ownPath, string? psModulePath)
        {
            var all = All(psModulePath);
            var comparison = Native.NativeLibraryLoader.IsWindows ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
            var own = Path.GetFullPath(ownPath);
            if (!all.Exists(m => string.Equals(Path.GetFullPath(m.AssemblyPath), own, comparison))) return null;
            var newest = Newest(all);
            return newest != null && newest.Version > VersionOf(ownPath) ? newest : null;
        }
    }
}
