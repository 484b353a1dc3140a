using System;
using System.ComponentModel;
using System.IO;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using XFlowDelivery.Native;

namespace XFlowDelivery.Config
{
    /// <summary>
    /// The configuration file holds the API token, so it exists with its final permissions from
    /// its first byte (never created open and restricted afterwards), is opened without sharing,
    /// and replaces an older file in one atomic rename that keeps those permissions.
    /// </summary>
    internal static class PrivateFile
    {
        /// <summary>
        /// The rest of the stream as an array of exactly the bytes read (a file that shrank while it
        /// was read gives fewer; the longer array is zeroed, as it may hold a secret).
        /// </summary>
        internal static byte[] ReadAll(FileStream stream)
        {
            var bytes = new byte[stream.Length];
            int read = 0, n;
            while (read < bytes.Length && (n = stream.Read(bytes, read, bytes.Length - read)) > 0) read += n;
            if (read == bytes.Length) return bytes;
            var shorter = new byte[read];
            Buffer.BlockCopy(bytes, 0, shorter, 0, read);
            Array.Clear(bytes, 0, bytes.Length);
            return shorter;
        }

        /// <summary>
        /// Creates <paramref name="path"/> (it must not exist) for writing, readable by its owner only:
        /// Linux/macOS mode 0600; Windows a protected ACL of SYSTEM, Administrators and the writing
        /// account, plus read for <paramref name="readerAccount"/> (the service account of a
        /// LocalMachine-protected token).
        /// </summary>
        internal static FileStream CreateNew(string path, string? readerAccount) =>
            NativeLibraryLoader.IsWindows ? CreateWindows(path, readerAccount) : CreateUnix(path);

        /// <summary>
        /// Atomically puts <paramref name="temp"/> in place of <paramref name="path"/>, whether or not
        /// it exists. The file keeps its own permissions (a rename moves the inode, or on NTFS the
        /// file record with its security descriptor), so there is never a moment without a
        /// configuration file or with a readable one.
        /// </summary>
        internal static void Replace(string temp, string path)
        {
            if (NativeLibraryLoader.IsWindows)
            {
                // NOT RUN HERE. MoveFileExW within one volume is a rename that replaces the target
                // (MOVEFILE_REPLACE_EXISTING); WRITE_THROUGH: "does not return until the file is
                // actually moved on the disk".
                const uint MOVEFILE_REPLACE_EXISTING = 0x1, MOVEFILE_WRITE_THROUGH = 0x8;
                if (!MoveFileExW(temp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
                    throw new IOException($"Cannot put '{temp}' in place of '{path}': {new Win32Exception(Marshal.GetLastWin32Error()).Message}");
            }
            else if (File.Exists(path))
            {
                File.Replace(temp, path, null); // rename(2)
            }
            else
            {
                File.Move(temp, path); // rename(2)
            }
        }

        /// <summary>
        /// FileStreamOptions.UnixCreateMode (.NET 7+; PowerShell 7.4+ runs on .NET 8+): the runtime
        /// passes the mode to open(2) with O_CREAT|O_EXCL, so the file is 0600 (less the umask) from
        /// the moment it exists. Found by reflection because netstandard2.0 does not declare it.
        /// </summary>
        private static FileStream CreateUnix(string path)
        {
            var optionsType = Type.GetType("System.IO.FileStreamOptions");
            var modeType = Type.GetType("System.IO.UnixFileMode");
            var constructor = optionsType == null ? null : typeof(FileStream).GetConstructor(new[] { typeof(string), optionsType });
            var createMode = optionsType?.GetProperty("UnixCreateMode");
            if (optionsType == null || modeType == null || constructor == null || createMode == null)
            {
                throw new XFlowDeliveryException("UnsupportedPlatform", "NotImplemented",
                    "Creating the configuration file readable by its owner only needs PowerShell 7.4 or newer on Linux and macOS.", path);
            }
            var options = Activator.CreateInstance(optionsType)!;
            optionsType.GetProperty("Mode")!.SetValue(options, FileMode.CreateNew);
            optionsType.GetProperty("Access")!.SetValue(options, FileAccess.Write);
            optionsType.GetProperty("Share")!.SetValue(options, FileShare.None);
            // No buffer of the stream's own: it would keep the token's base64 text unzeroed.
            optionsType.GetProperty("BufferSize")!.SetValue(options, 0);
            const int UserReadWrite = 0x180; // 0600
            createMode.SetValue(options, Enum.ToObject(modeType, UserReadWrite));
            try
            {
                return (FileStream)constructor.Invoke(new[] { path, options });
            }
            catch (TargetInvocationException ex) when (ex.InnerException != null)
            {
                ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
                throw; // unreachable
            }
        }

        /// <summary>
        /// NOT RUN HERE (Windows only). CreateFileW with SECURITY_ATTRIBUTES built from SDDL
        /// (ConvertStringSecurityDescriptorToSecurityDescriptorW), CREATE_NEW, no sharing: the ACL is
        /// the file's from its creation. "P" protects the DACL, so nothing is inherited from the folder.
        /// netstandard2.0 has no file ACL API, and no NuGet package may ship beside the module.
        /// </summary>
        private static FileStream CreateWindows(string path, string? readerAccount)
        {
            var sddl = new StringBuilder("D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;").Append(AccountSid(ConfigStore.RunningAccount)).Append(')');
            if (readerAccount != null) sddl.Append("(A;;FR;;;").Append(AccountSid(readerAccount)).Append(')');
            if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.ToString(), SDDL_REVISION_1, out var descriptor, IntPtr.Zero))
                throw new Win32Exception(Marshal.GetLastWin32Error());
            try
            {
                var attributes = new SecurityAttributes
                {
                    Length = Marshal.SizeOf(typeof(SecurityAttributes)),
                    SecurityDescriptor = descriptor,
                    InheritHandle = 0,
                };
                const uint GENERIC_WRITE = 0x40000000, CREATE_NEW = 1, FILE_ATTRIBUTE_NORMAL = 0x80, NO_SHARING = 0;
                var handle = CreateFileW(path, GENERIC_WRITE, NO_SHARING, ref attributes, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, IntPtr.Zero);
                if (handle.IsInvalid)
                {
                    var error = Marshal.GetLastWin32Error();
                    handle.Dispose();
                    throw new IOException($"Cannot create '{path}': {new Win32Exception(error).Message}", error);
                }
                // Buffer size 1: no buffer of the stream's own, which would keep the token unzeroed.
                return new FileStream(handle, FileAccess.Write, 1);
            }
            finally
            {
                LocalFree(descriptor);
            }
        }

        /// <summary>DOMAIN\name (a gMSA's name ends in $) as a SID string for SDDL.</summary>
        internal static string AccountSid(string account)
        {
            int sidSize = 0, domainSize = 0;
            LookupAccountNameW(null, account, null, ref sidSize, null, ref domainSize, out _);
            var sid = new byte[Math.Max(sidSize, 1)];
            var domain = new StringBuilder(Math.Max(domainSize, 1));
            if (sidSize == 0 || !LookupAccountNameW(null, account, sid, ref sidSize, domain, ref domainSize, out _))
            {
                throw new XFlowDeliveryException("AccountNotFound", "ObjectNotFound",
                    $"The account '{account}' was not found ({new Win32Exception(Marshal.GetLastWin32Error()).Message}). Give it as DOMAIN\\name (a gMSA as DOMAIN\\name$).", account);
            }
            if (!ConvertSidToStringSidW(sid, out var text)) throw new Win32Exception(Marshal.GetLastWin32Error());
            try
            {
                return Marshal.PtrToStringUni(text)!;
            }
            finally
            {
                LocalFree(text);
            }
        }

        private const uint SDDL_REVISION_1 = 1;

        [StructLayout(LayoutKind.Sequential)]
        private struct SecurityAttributes
        {
            public int Length;
            public IntPtr SecurityDescriptor;
            public int InheritHandle;
        }

        [DllImport("kernel32.dll", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern SafeFileHandle CreateFileW(string fileName, uint desiredAccess, uint shareMode, ref SecurityAttributes securityAttributes,
            uint creationDisposition, uint flagsAndAttributes, IntPtr templateFile);

        [DllImport("kernel32.dll", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern bool MoveFileExW(string existingFileName, string newFileName, uint flags);

        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern bool ConvertStringSecurityDescriptorToSecurityDescriptorW(string sddl, uint revision, out IntPtr descriptor, IntPtr size);

        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern bool LookupAccountNameW(string? systemName, string accountName, byte[]? sid, ref int sidSize,
            StringBuilder? referencedDomainName, ref int domainSize, out int use);

        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true, ExactSpelling = true)]
        private static extern bool ConvertSidToStringSidW(byte[] sid, out IntPtr stringSid);

        [DllImport("kernel32.dll")]
        private static extern IntPtr LocalFree(IntPtr memory);
    }
}
