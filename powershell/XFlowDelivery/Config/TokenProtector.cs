using System;
using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;

namespace XFlowDelivery.Config
{
    /// <summary>
    /// Protects the API token at rest. Windows: DPAPI through crypt32 directly (ProtectedData is
    /// not in netstandard2.0 without a NuGet package). Elsewhere: the UTF-8 bytes themselves (the
    /// file stores them base64, and its mode is what protects them). The plain token, and on
    /// Linux its base64 text (<see cref="TokenText"/>), only ever exist in byte/char arrays
    /// that are zeroed after use, never as a managed string.
    /// </summary>
    internal static unsafe class TokenProtector
    {
        // Ties the ciphertext to this module: other DPAPI users of the account cannot decrypt it by accident.
        private static readonly byte[] Entropy = Encoding.UTF8.GetBytes("XFlowDelivery API token v1");

        private const int CRYPTPROTECT_UI_FORBIDDEN = 0x1;
        private const int CRYPTPROTECT_LOCAL_MACHINE = 0x4;

        /// <summary>What the file stores (base64): the ciphertext, or the UTF-8 token. The caller zeroes it.</summary>
        internal static byte[] Protect(SecureString token, TokenProtection protection)
        {
            byte[] plain = ToUtf8(token);
            if (protection == TokenProtection.OwnerOnlyFile) return plain;
            try
            {
                return Dpapi(plain, protection == TokenProtection.DpapiLocalMachine, protect: true);
            }
            finally
            {
                Array.Clear(plain, 0, plain.Length);
            }
        }

        /// <summary>
        /// The token from what the file stores (the caller zeroes <paramref name="stored"/>).
        /// Throws DecoderFallbackException or Win32Exception (with DPAPI's reason) on failure.
        /// </summary>
        internal static SecureString Unprotect(byte[] stored, TokenProtection protection)
        {
            byte[]? decrypted = protection == TokenProtection.OwnerOnlyFile
                ? null
                : Dpapi(stored, protection == TokenProtection.DpapiLocalMachine, protect: false);
            byte[] plain = decrypted ?? stored;
            char[] chars = new char[Encoding.UTF8.GetMaxCharCount(plain.Length)];
            try
            {
                int count = new UTF8Encoding(false, throwOnInvalidBytes: true).GetChars(plain, 0, plain.Length, chars, 0);
                // Built in one go: appending char by char regrows the SecureString's buffer.
                fixed (char* p = chars)
                {
                    var secure = new SecureString(p, count);
                    secure.MakeReadOnly();
                    return secure;
                }
            }
            finally
            {
                if (decrypted != null) Array.Clear(decrypted, 0, decrypted.Length);
                Array.Clear(chars, 0, chars.Length);
            }
        }

        private static byte[] ToUtf8(SecureString token)
        {
            IntPtr unicode = Marshal.SecureStringToGlobalAllocUnicode(token);
            try
            {
                var chars = (char*)unicode;
                int count = Encoding.UTF8.GetByteCount(chars, token.Length);
                var bytes = new byte[count];
                fixed (byte* dest = bytes)
                {
                    Encoding.UTF8.GetBytes(chars, token.Length, dest, count);
                }
                return bytes;
            }
            finally
            {
                Marshal.ZeroFreeGlobalAllocUnicode(unicode);
            }
        }

        // NOT RUN HERE (Windows only): written against the documented crypt32 API.
        private static byte[] Dpapi(byte[] input, bool localMachine, bool protect)
        {
            if (!Native.NativeLibraryLoader.IsWindows)
            {
                throw new PlatformNotSupportedException("DPAPI exists only on Windows; this token was protected on Windows.");
            }
            int flags = CRYPTPROTECT_UI_FORBIDDEN | (localMachine ? CRYPTPROTECT_LOCAL_MACHINE : 0);
            DataBlob output = default;
            fixed (byte* inPtr = input)
            fixed (byte* entropyPtr = Entropy)
            {
                var inBlob = new DataBlob { cbData = input.Length, pbData = (IntPtr)inPtr };
                var entropyBlob = new DataBlob { cbData = Entropy.Length, pbData = (IntPtr)entropyPtr };
                bool ok = protect
                    ? CryptProtectData(ref inBlob, "XFlowDelivery API token", ref entropyBlob, IntPtr.Zero, IntPtr.Zero, flags, out output)
                    : CryptUnprotectData(ref inBlob, IntPtr.Zero, ref entropyBlob, IntPtr.Zero, IntPtr.Zero, flags, out output);
                if (!ok) throw new Win32Exception(Marshal.GetLastWin32Error());
            }
            try
            {
                var result = new byte[output.cbData];
                Marshal.Copy(output.pbData, result, 0, output.cbData);
                return result;
            }
            finally
            {
                var p = (byte*)output.pbData;
                for (int i = 0; i < output.cbData; i++) p[i] = 0;
                LocalFree(output.pbData);
            }
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct DataBlob
        {
            public int cbData;
            public IntPtr pbData;
        }

        [DllImport("crypt32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool CryptProtectData(ref DataBlob dataIn, string description, ref DataBlob entropy,
            IntPtr reserved, IntPtr prompt, int flags, out DataBlob dataOut);

        [DllImport("crypt32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool CryptUnprotectData(ref DataBlob dataIn, IntPtr description, ref DataBlob entropy,
            IntPtr reserved, IntPtr prompt, int flags, out DataBlob dataOut);

        [DllImport("kernel32.dll")]
        private static extern IntPtr LocalFree(IntPtr memory);
    }
}
