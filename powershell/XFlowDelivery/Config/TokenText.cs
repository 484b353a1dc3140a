using System;
using System.Text;

namespace XFlowDelivery.Config
{
    /// <summary>
    /// The token's value in the configuration file (<c>"token": {"value": "&lt;base64&gt;"}</c>) kept
    /// in byte and char arrays only: on Linux that base64 text is the token itself, merely
    /// encoded, so it must never become a managed string (which nothing can zero). Reading takes
    /// the value's bytes where the reader found them (<see cref="ConfigStore.Read"/>) and decodes
    /// them here; writing splices it into the serialized document. Every array that held it is zeroed.
    /// </summary>
    internal static class TokenText
    {
        /// <summary>What the serializer writes where the value goes; replaced by the value's bytes.</summary>
        internal const string Placeholder = "XFlowDeliveryTokenValuePlaceholder";

        /// <summary>The bytes a JSON string's contents (escapes and all) stand for, read as base64.</summary>
        internal static byte[] DecodeBase64(byte[] raw)
        {
            var chars = new char[raw.Length];
            try
            {
                int n = 0;
                for (int i = 0; i < raw.Length; i++)
                {
                    byte b = raw[i];
                    if (b != '\\')
                    {
                        chars[n++] = (char)b;
                        continue;
                    }
                    if (++i >= raw.Length) throw new FormatException("the token ends inside an escape");
                    switch ((char)raw[i])
                    {
                        case 'u':
                            if (i + 4 >= raw.Length) throw new FormatException("the token ends inside an escape");
                            int code = 0;
                            for (int k = 1; k <= 4; k++) code = code * 16 + Hex(raw[i + k]);
                            chars[n++] = (char)code;
                            i += 4;
                            break;
                        case '/': chars[n++] = '/'; break;
                        // Nothing else can stand in base64; let the decoder say so.
                        default: chars[n++] = '\\'; break;
                    }
                }
                return Convert.FromBase64CharArray(chars, 0, n);
            }
            finally
            {
                Array.Clear(chars, 0, chars.Length);
            }
        }

        /// <summary>
        /// <paramref name="shape"/> (a serialized document holding <see cref="Placeholder"/> once)
        /// with the placeholder replaced by <paramref name="value"/> in base64, handed to
        /// <paramref name="write"/> in three pieces; the piece holding the value is zeroed after.
        /// </summary>
        internal static void Splice(byte[] shape, byte[] value, Action<byte[], int, int> write)
        {
            var placeholder = Encoding.ASCII.GetBytes(Placeholder);
            int at = IndexOf(shape, placeholder);
            if (at < 0 || IndexOf(shape, placeholder, at + 1) >= 0)
                throw new InvalidOperationException("the serialized configuration does not hold the token placeholder exactly once");
            var chars = new char[(value.Length + 2) / 3 * 4];
            var bytes = new byte[chars.Length];
            try
            {
                int n = Convert.ToBase64CharArray(value, 0, value.Length, chars, 0);
                for (int i = 0; i < n; i++) bytes[i] = (byte)chars[i];
                write(shape, 0, at);
                write(bytes, 0, n);
                int rest = at + placeholder.Length;
                write(shape, rest, shape.Length - rest);
            }
            finally
            {
                Array.Clear(chars, 0, chars.Length);
                Array.Clear(bytes, 0, bytes.Length);
            }
        }

        private static int IndexOf(byte[] haystack, byte[] needle, int from = 0)
        {
            for (int i = from; i + needle.Length <= haystack.Length; i++)
            {
                int k = 0;
                while (k < needle.Length && haystack[i + k] == needle[k]) k++;
                if (k == needle.Length) return i;
            }
            return -1;
        }

        private static int Hex(byte b)
        {
            if (b >= '0' && b <= '9') return b - '0';
            if (b >= 'a' && b <= 'f') return b - 'a' + 10;
            if (b >= 'A' && b <= 'F') return b - 'A' + 10;
            throw new FormatException("a \\u escape in the token is not hexadecimal");
        }
    }
}
