using System;
using System.ComponentModel;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// Finds and checks the native engine (xflow_delivery) before the first P/Invoke.
    ///
    /// Layout inside the module folder: <c>&lt;os&gt;-&lt;arch&gt;/xflow_delivery.&lt;ext&gt;</c>,
    /// e.g. <c>linux-x64/xflow_delivery.so</c>, <c>win-x64/xflow_delivery.dll</c>,
    /// <c>osx-arm64/xflow_delivery.dylib</c>.
    ///
    /// PowerShell 7 on Linux/macOS: pwsh's own native-library fallback probes
    /// <c>&lt;module dir&gt;/&lt;os&gt;-&lt;arch&gt;/</c> for the DllImport name plus the platform
    /// extension, so no loader code is needed there (measured with pwsh 7.6.9 on Linux).
    ///
    /// Windows (Windows PowerShell 5.1 and PowerShell 7): the file is preloaded by full path with
    /// LoadLibraryExW(LOAD_WITH_ALTERED_SEARCH_PATH). The Windows loader matches already-loaded
    /// modules by base name, so the later DllImport("xflow_delivery") binds to it.
    /// NOT RUN HERE: the Windows branch was written for Windows PowerShell 5.1 / PowerShell 7 on
    /// Windows but could not be executed on this Linux machine.
    /// </summary>
    internal static class NativeLibraryLoader
    {
        /// <summary>
        /// The C ABI version this assembly was compiled against: the XFD_ABI_VERSION constant that
        /// csbindgen copied from rust/xflow-ffi into the bindings (2). xfd_abi_version() must match.
        /// </summary>
        internal const uint ExpectedAbiVersion = NativeMethods.XFD_ABI_VERSION;

        internal const string LibraryName = "xflow_delivery";

        private static readonly object Gate = new object();
        private static bool _verified;
        private static IntPtr _windowsModule;

        /// <summary>
        /// Environment.OSVersion.Platform is Win32NT on Windows in both .NET Framework and .NET, and
        /// needs no RuntimeInformation (whose facade is missing on old .NET Framework 4.6.x).
        /// </summary>
        internal static bool IsWindows => Environment.OSVersion.Platform == PlatformID.Win32NT;

        // Only reached off Windows, i.e. in PowerShell 7 where RuntimeInformation always exists.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static bool IsMacOS() => RuntimeInformation.IsOSPlatform(OSPlatform.OSX);

        /// <summary>The folder that holds XFlowDelivery.dll (the module folder).</summary>
        internal static string ModuleDirectory
        {
            get
            {
                var location = typeof(NativeLibraryLoader).Assembly.Location;
                return string.IsNullOrEmpty(location)
                    ? AppDomain.CurrentDomain.BaseDirectory
                    : Path.GetDirectoryName(location)!;
            }
        }

        /// <summary>e.g. linux-x64, win-x64, osx-arm64.</summary>
        internal static string RuntimeFolder
        {
            get
            {
                string os;
                if (IsWindows) os = "win";
                else if (IsMacOS()) os = "osx";
                else os = "linux";
                return os + "-" + ArchitectureName;
            }
        }

        private static string ArchitectureName
        {
            get
            {
                try
                {
                    return ProcessArchitectureName();
                }
                catch (Exception)
                {
                    // NOT RUN HERE: .NET Framework without the RuntimeInformation facade (4.6.x).
                    // The JIT fails on ProcessArchitectureName itself, so the fallback is reachable.
                    return IntPtr.Size == 8 ? "x64" : "x86";
                }
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static string ProcessArchitectureName()
        {
            switch (RuntimeInformation.ProcessArchitecture)
            {
                case Architecture.X64: return "x64";
                case Architecture.X86: return "x86";
                case Architecture.Arm64: return "arm64";
                case Architecture.Arm: return "arm";
                default: return RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
            }
        }

        internal static string FileName
        {
            get
            {
                if (IsWindows) return LibraryName + ".dll";
                if (IsMacOS()) return LibraryName + ".dylib";
                return LibraryName + ".so";
            }
        }

        /// <summary>Where the native library is expected for this process.</summary>
        internal static string ExpectedPath => Path.Combine(Path.Combine(ModuleDirectory, RuntimeFolder), FileName);

        /// <summary>
        /// Loads the native library (Windows: preload by full path) and checks its ABI version.
        /// Idempotent: Import-Module twice, -Force, and Remove-Module + Import-Module all call it
        /// again in the same process; after the first success it returns at once.
        /// </summary>
        internal static void EnsureLoaded()
        {
            lock (Gate)
            {
                if (_verified) return;
                var expectedPath = ExpectedPath;

                if (IsWindows && _windowsModule == IntPtr.Zero)
                {
                    // NOT RUN HERE (Windows only).
                    if (!File.Exists(expectedPath))
                    {
                        throw new XFlowDeliveryLoadException(
                            $"The XFlowDelivery native engine was not found. Expected '{expectedPath}'. " +
                            "Reinstall the module; it must contain the folder for this platform.");
                    }
                    RefuseAnotherCopy(expectedPath);
                    const uint LOAD_WITH_ALTERED_SEARCH_PATH = 0x00000008;
                    var module = LoadLibraryExW(expectedPath, IntPtr.Zero, LOAD_WITH_ALTERED_SEARCH_PATH);
                    if (module == IntPtr.Zero)
                    {
                        int code = Marshal.GetLastWin32Error();
                        var win32 = new Win32Exception(code);
                        const int ERROR_MOD_NOT_FOUND = 126;
                        string why = code == ERROR_MOD_NOT_FOUND
                            ? MissingDependencies(expectedPath)
                            : "(is it built for this processor architecture?)";
                        throw new XFlowDeliveryLoadException(
                            $"The XFlowDelivery native engine '{expectedPath}' could not be loaded: {win32.Message} {why}", win32);
                    }
                    _windowsModule = module; // kept loaded for the life of the process
                }

                uint actual;
                try
                {
                    actual = NativeMethods.xfd_abi_version();
                }
                catch (Exception ex) when (ex is DllNotFoundException || ex is BadImageFormatException || ex is EntryPointNotFoundException)
                {
                    throw new XFlowDeliveryLoadException(
                        $"The XFlowDelivery native engine could not be loaded. Expected '{expectedPath}'" +
                        (File.Exists(expectedPath) ? " (the file exists but did not load: " + ex.Message + ")." : " (the file is missing)."),
                        ex);
                }
                CheckAbiVersion(actual, expectedPath);
                _verified = true;
            }
        }

        /// <summary>
        /// NOT RUN HERE (Windows only). Windows matches loaded DLLs by base name: with another copy
        /// of xflow_delivery.dll (another module version) already in this process, this copy's
        /// DllImports would bind to that one, another build with perhaps another ABI. Refused, with
        /// both paths and the fix.
        /// </summary>
        internal static void RefuseAnotherCopy(string expectedPath)
        {
            var loaded = GetModuleHandleW(FileName);
            if (loaded == IntPtr.Zero) return;
            var buffer = new System.Text.StringBuilder(32768);
            int length = GetModuleFileNameW(loaded, buffer, buffer.Capacity);
            if (length <= 0) throw new Win32Exception(Marshal.GetLastWin32Error());
            var loadedPath = buffer.ToString(0, length);
            if (!SameLibraryPath(loadedPath, expectedPath))
            {
                throw new XFlowDeliveryLoadException(
                    $"Another copy of the XFlowDelivery native engine is already loaded in this process from '{loadedPath}' " +
                    $"(another version of the module); this module's '{expectedPath}' cannot be loaded beside it. " +
                    "Start a new PowerShell session and import only one version of XFlowDelivery.");
            }
        }

        /// <summary>Whether two Windows paths name the same file: case-insensitive, with / as \ and a \\?\ prefix ignored.</summary>
        internal static bool SameLibraryPath(string a, string b)
        {
            static string Plain(string p)
            {
                p = p.Replace('/', '\\');
                return p.StartsWith("\\\\?\\", StringComparison.Ordinal) ? p.Substring(4) : p;
            }
            return string.Equals(Plain(a), Plain(b), StringComparison.OrdinalIgnoreCase);
        }

        /// <summary>
        /// NOT RUN HERE (Windows only). LoadLibraryExW failed with ERROR_MOD_NOT_FOUND although the
        /// file exists: a DLL it imports is missing. Names the imports the standard search does not
        /// find (LOAD_LIBRARY_AS_DATAFILE maps without running anything). API-set names
        /// (api-ms-*, ext-ms-*) are resolved by the loader itself and skipped.
        /// </summary>
        private static string MissingDependencies(string path)
        {
            const uint LOAD_LIBRARY_AS_DATAFILE = 0x00000002;
            var missing = new System.Collections.Generic.List<string>();
            try
            {
                foreach (var name in PeImports.Read(path))
                {
                    if (name.StartsWith("api-ms-", StringComparison.OrdinalIgnoreCase) || name.StartsWith("ext-ms-", StringComparison.OrdinalIgnoreCase)) continue;
                    var probe = LoadLibraryExW(name, IntPtr.Zero, LOAD_LIBRARY_AS_DATAFILE);
                    if (probe == IntPtr.Zero) missing.Add(name);
                    else FreeLibrary(probe);
                }
            }
            catch (Exception ex) when (ex is IOException || ex is BadImageFormatException || ex is UnauthorizedAccessException)
            {
                return "(a DLL it depends on is missing; its imports could not be read: " + ex.Message + ")";
            }
            if (missing.Count == 0) return "(a DLL it depends on is missing)";
            return $"(missing: {string.Join(", ", missing)}" +
                   (missing.Exists(m => m.StartsWith("vcruntime", StringComparison.OrdinalIgnoreCase) || m.StartsWith("msvcp", StringComparison.OrdinalIgnoreCase))
                       ? "; this build needs the Visual C++ Redistributable: install it, or use a release of the module, whose engine is linked with the static C runtime)"
                       : ")");
        }

        /// <summary>Throws unless the native engine speaks the ABI this assembly expects.</summary>
        internal static void CheckAbiVersion(uint actual, string path)
        {
            if (actual != ExpectedAbiVersion)
            {
                throw new XFlowDeliveryLoadException(
                    $"The XFlowDelivery native engine '{path}' has ABI version {actual}, but this module " +
                    $"(XFlowDelivery.dll) expects ABI version {ExpectedAbiVersion}. The DLL and the native " +
                    "library come from different builds; reinstall the module.");
            }
        }

        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern IntPtr LoadLibraryExW(string lpLibFileName, IntPtr hFile, uint dwFlags);

        [DllImport("kernel32", SetLastError = true, ExactSpelling = true)]
        private static extern bool FreeLibrary(IntPtr module);

        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern IntPtr GetModuleHandleW(string moduleName);

        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern int GetModuleFileNameW(IntPtr module, System.Text.StringBuilder fileName, int size);
    }

    /// <summary>The native engine is missing, did not load, or has the wrong ABI version.</summary>
    public sealed class XFlowDeliveryLoadException : Exception
    {
        public XFlowDeliveryLoadException(string message) : base(message) { }
        public XFlowDeliveryLoadException(string message, Exception inner) : base(message, inner) { }
    }
}
