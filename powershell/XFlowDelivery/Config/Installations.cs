using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Security.Cryptography;
using System.Text;
using XFlowDelivery.Native;

namespace XFlowDelivery.Config
{
    /// <summary>One installation (a configuration with its own state folder) as the machine-wide registry records it.</summary>
    [DataContract]
    internal sealed class InstallationEntry
    {
        [DataMember(Name = "configPath", Order = 0)] public string? ConfigPath { get; set; }
        [DataMember(Name = "statePath", Order = 1)] public string StatePath { get; set; } = "";
        [DataMember(Name = "sdLoenPath", Order = 2, EmitDefaultValue = false)] public string? SdLoenPath { get; set; }
        [DataMember(Name = "prismePath", Order = 3, EmitDefaultValue = false)] public string? PrismePath { get; set; }
        [DataMember(Name = "taskName", Order = 4, EmitDefaultValue = false)] public string? TaskName { get; set; }
        [DataMember(Name = "recordedAt", Order = 5)] public string? RecordedAt { get; set; }
        [DataMember(Name = "baseUrl", Order = 6, EmitDefaultValue = false)] public string? BaseUrl { get; set; }

        internal static InstallationEntry From(ConfigDocument doc, string? configPath, string? taskName = null) => new InstallationEntry
        {
            ConfigPath = configPath,
            BaseUrl = doc.BaseUrl,
            StatePath = doc.StatePath ?? "",
            SdLoenPath = doc.SdLoenPath,
            PrismePath = doc.PrismePath,
            TaskName = taskName,
        };
    }

    /// <summary>
    /// The machine-wide registry of installations, so that two configurations on one server (test
    /// and production XFlow, or two organisations) cannot share a state folder or deliver one
    /// system into one import folder, and Get-XFlowDeliveryStatus can list them all.
    ///
    /// One small JSON file per installation, named after its state folder, in
    /// %ProgramData%\XFlowDelivery\installations (Windows) or /var/lib/xflow-delivery/installations
    /// ($env:XFLOWDELIVERY_INSTALLATIONS overrides both). One file each, written by rename, so two
    /// installations recorded at once never overwrite each other, and a reader never sees half a
    /// file. Nothing is written into an import folder: an importer would try to import a marker
    /// file. An entry whose configuration file no longer exists is stale and ignored.
    /// </summary>
    internal static class Installations
    {
        internal const string DirectoryVariable = "XFLOWDELIVERY_INSTALLATIONS";
        /// <summary>Writes an entry; entries are read with <see cref="JsonScanner"/> (every run reads them).</summary>
        private static readonly DataContractJsonSerializer Serializer = new DataContractJsonSerializer(typeof(InstallationEntry));

        internal static string Directory
        {
            get
            {
                var overridden = Environment.GetEnvironmentVariable(DirectoryVariable);
                if (!string.IsNullOrEmpty(overridden)) return overridden!;
                return NativeLibraryLoader.IsWindows
                    ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.CommonApplicationData), "XFlowDelivery", "installations")
                    : "/var/lib/xflow-delivery/installations";
            }
        }

        /// <summary>Every live entry (stale and unreadable ones left out), oldest first.</summary>
        internal static List<InstallationEntry> Read()
        {
            var entries = new List<InstallationEntry>();
            string[] files;
            try
            {
                files = System.IO.Directory.GetFiles(Directory, "*.json");
            }
            catch (Exception ex) when (ex is DirectoryNotFoundException || ex is UnauthorizedAccessException || ex is IOException)
            {
                return entries;
            }
            Array.Sort(files, StringComparer.Ordinal);
            foreach (var file in files)
            {
                if (ReadEntry(file) is InstallationEntry entry && entry.StatePath.Length > 0
                    && (entry.ConfigPath == null || File.Exists(entry.ConfigPath)))
                {
                    entries.Add(entry);
                }
            }
            entries.Sort((a, b) => string.CompareOrdinal(a.RecordedAt, b.RecordedAt));
            return entries;
        }

        /// <summary>Records (or replaces) this installation's entry; an entry the same configuration file left under another state folder is removed.</summary>
        internal static void Record(InstallationEntry entry)
        {
            entry.RecordedAt ??= DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
            var dir = Directory;
            System.IO.Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, Key(entry.StatePath) + ".json");
            var temp = path + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp";
            try
            {
                using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    using (var writer = JsonReaderWriterFactory.CreateJsonWriter(stream, new UTF8Encoding(false), ownsStream: false, indent: true))
                    {
                        Serializer.WriteObject(writer, entry);
                    }
                    stream.Flush(true);
                }
                if (File.Exists(path)) File.Replace(temp, path, null);
                else File.Move(temp, path);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            if (entry.ConfigPath == null) return;
            foreach (var file in System.IO.Directory.GetFiles(dir, "*.json"))
            {
                if (string.Equals(file, path, StringComparison.Ordinal)) continue;
                if (ReadEntry(file) is InstallationEntry old && old.ConfigPath != null && SamePath(old.ConfigPath, entry.ConfigPath))
                {
                    File.Delete(file);
                }
            }
        }

        private static InstallationEntry? ReadEntry(string file)
        {
            try
            {
                byte[] bytes;
                using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                {
                    bytes = PrivateFile.ReadAll(stream);
                }
                // Someone else's broken entry must not stop this installation (null).
                return JsonScanner.TryRead(bytes, ReadEntry, out _);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return null; // someone else's unreadable entry must not stop this installation
            }
        }

        private static InstallationEntry ReadEntry(ref JsonScanner json)
        {
            var entry = new InstallationEntry();
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "configPath": entry.ConfigPath = json.ReadText(); break;
                    case "statePath": entry.StatePath = json.ReadText() ?? ""; break;
                    case "sdLoenPath": entry.SdLoenPath = json.ReadText(); break;
                    case "prismePath": entry.PrismePath = json.ReadText(); break;
                    case "taskName": entry.TaskName = json.ReadText(); break;
                    case "recordedAt": entry.RecordedAt = json.ReadText(); break;
                    case "baseUrl": entry.BaseUrl = json.ReadText(); break;
                    default: json.SkipValue(); break;
                }
            }
            return entry;
        }

        /// <summary>The entry recorded for this configuration file, if any.</summary>
        internal static InstallationEntry? ForConfig(List<InstallationEntry> entries, string configPath) =>
            entries.Find(e => e.ConfigPath != null && SamePath(e.ConfigPath, configPath));

        /// <summary>
        /// Why <paramref name="candidate"/> may not run beside the recorded installations, or null.
        /// An entry for the same configuration file is the candidate itself; so is one with the same
        /// XFlow URL, state folder and import folders (a copy of the configuration file, or
        /// Invoke-XFlowDelivery with explicit parameters: the same installation run by hand).
        /// </summary>
        internal static XFlowDeliveryException? FindConflict(InstallationEntry candidate, List<InstallationEntry> entries)
        {
            foreach (var other in entries)
            {
                if (IsSame(candidate, other)) continue;
                string owner = Describe(other);
                if (SamePath(other.StatePath, candidate.StatePath))
                {
                    return Conflict(candidate.StatePath,
                        $"The state folder '{candidate.StatePath}' already belongs to {owner}. Each installation needs a state folder of its own (-StatePath).");
                }
                var shared = SharedFolder("SD Løn", candidate.SdLoenPath, other.SdLoenPath, owner)
                             ?? SharedFolder("Prisme", candidate.PrismePath, other.PrismePath, owner);
                if (shared != null) return shared;
                if (candidate.TaskName != null && other.TaskName != null
                    && string.Equals(candidate.TaskName, other.TaskName, StringComparison.OrdinalIgnoreCase))
                {
                    return Conflict(candidate.TaskName,
                        $"The task name '{candidate.TaskName}' is already used by {owner}. Give -TaskName another name.");
                }
            }
            return null;
        }

        private static XFlowDeliveryException? SharedFolder(string system, string? mine, string? theirs, string owner) =>
            mine != null && theirs != null && SamePath(mine, theirs)
                ? Conflict(mine, $"{system}'s import folder '{mine}' is already served by {owner}. Two installations delivering {system} into one folder would each take the other's files for their own; give this installation its own folder.")
                : null;

        private static bool IsSame(InstallationEntry candidate, InstallationEntry other)
        {
            if (candidate.ConfigPath != null && other.ConfigPath != null && SamePath(candidate.ConfigPath, other.ConfigPath)) return true;
            return SameUrl(candidate.BaseUrl, other.BaseUrl)
                   && SamePath(candidate.StatePath, other.StatePath)
                   && SameOptional(candidate.SdLoenPath, other.SdLoenPath)
                   && SameOptional(candidate.PrismePath, other.PrismePath);
        }

        private static bool SameUrl(string? a, string? b) =>
            a != null && b != null && string.Equals(a.Trim().TrimEnd('/'), b.Trim().TrimEnd('/'), StringComparison.OrdinalIgnoreCase);

        private static bool SameOptional(string? a, string? b) => a == null ? b == null : b != null && SamePath(a, b);

        private static string Describe(InstallationEntry e) =>
            "the installation configured in '" + (e.ConfigPath ?? "(explicit parameters)") + "'" +
            (e.TaskName != null ? " (task " + e.TaskName + ")" : "") + " with state folder '" + e.StatePath + "'";

        private static XFlowDeliveryException Conflict(string target, string message) =>
            new XFlowDeliveryException("InstallationConflict", "ResourceExists",
                message + " Registered installations: " + Directory + ".", target);

        /// <summary>Paths compared as the file system does: full, without a trailing separator, case-insensitive on Windows.</summary>
        internal static bool SamePath(string a, string b) =>
            string.Equals(Normalize(a), Normalize(b), NativeLibraryLoader.IsWindows ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

        private static string Normalize(string path)
        {
            string full;
            try
            {
                full = Path.GetFullPath(path);
            }
            catch (Exception ex) when (ex is ArgumentException || ex is NotSupportedException || ex is PathTooLongException)
            {
                full = path;
            }
            var root = Path.GetPathRoot(full) ?? "";
            return full.Length > root.Length ? full.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) : full;
        }

        /// <summary>The entry's file name: a hash of the normalized state folder (one installation per state folder).</summary>
        private static string Key(string statePath)
        {
            var normalized = Normalize(statePath);
            if (NativeLibraryLoader.IsWindows) normalized = normalized.ToUpperInvariant();
            using (var sha = SHA256.Create())
            {
                var hash = sha.ComputeHash(Encoding.UTF8.GetBytes(normalized));
                var text = new StringBuilder(32);
                for (int i = 0; i < 16; i++) text.Append(hash[i].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                return text.ToString();
            }
        }
    }
}
