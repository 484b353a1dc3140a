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
        private InstalledModule(string entry, string assemblyPath)
        {
            Entry = entry;
            AssemblyPath = assemblyPath;
            Version = VersionOf(assemblyPath);
        }

        /// <summary>The PSModulePath entry it was found in.</summary>
        internal string Entry { get; }

        internal string AssemblyPath { get; }

        internal Version Version { get; }

        /// <summary>Every copy in PSModulePath order; an entry that cannot be read is skipped.</summary>
        internal static List<InstalledModule> All(string? psModulePath)
        {
            var found = new List<InstalledModule>();
            foreach (var entry in (psModulePath ?? "").Split(new[] { Path.PathSeparator }, StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    foreach (var assembly in Directory.GetFiles(Path.Combine(entry, "XFlowDelivery"), "XFlowDelivery.dll", SearchOption.AllDirectories))
                    {
                        found.Add(new InstalledModule(entry, assembly));
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

        /// <summary>The copy whose assembly is <paramref name="assemblyPath"/>, or null when it is not installed.</summary>
        internal static InstalledModule? At(List<InstalledModule> modules, string assemblyPath)
        {
            var comparison = Native.NativeLibraryLoader.IsWindows ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
            var full = Path.GetFullPath(assemblyPath);
            return modules.Find(m => string.Equals(Path.GetFullPath(m.AssemblyPath), full, comparison));
        }

        /// <summary>
        /// A newer copy than the one at <paramref name="ownPath"/>, if that one is itself installed;
        /// null otherwise. A copy loaded from elsewhere (a build folder, an explicit path) is never
        /// replaced.
        /// </summary>
        internal static InstalledModule? NewerThan(string ownPath, List<InstalledModule> installed)
        {
            if (At(installed, ownPath) == null) return null;
            var newest = Newest(installed);
            return newest != null && newest.Version > VersionOf(ownPath) ? newest : null;
        }
    }
}
