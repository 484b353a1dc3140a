using System;
using System.Collections.Generic;
using System.Text;

namespace XFlowDelivery.Config
{
    /// <summary>
    /// The token's value in the configuration file (<c>"token": {"value": "&lt;base64&gt;"}</c>) kept
    /// in byte and char arrays only: on Linux that base64 text is the token itself, merely
    /// encoded, so it must never become a managed string (which nothing can zero). Reading finds
    /// the value in the file's bytes and hands DataContractJsonSerializer a copy without it;
    /// writing splices it into the serialized document. Every array that held it is zeroed.
    /// </summary>
    internal static class TokenText
    {
        /// <summary>What the serializer writes where the value goes; replaced by the value's bytes.</summary>
        internal const string Placeholder = "XFlowDeliveryTokenValuePlaceholder";

        /// <summary>
        /// The spans (start, length) of the contents of every <c>token.value</c> string in a UTF-8
        /// JSON document, from <paramref name="from"/> on. Throws FormatException when the
        /// document is not JSON (the serializer would refuse it as well).
        /// </summary>
        internal static List<(int Start, int Length)> FindValues(byte[] json, int from)
        {
            var found = new List<(int, int)>();
            var scanner = new Scanner(json, from);
            scanner.Object(0, key => scanner.KeyIs(key, "token") && scanner.Peek() == '{' &&
                                     scanner.Object(1, inner =>
                                     {
                                         if (!scanner.KeyIs(inner, "value") || scanner.Peek() != '"') return false;
                                         found.Add(scanner.String());
                                         return true;
                                     }));
            scanner.End();
            return found;
        }

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

        /// <summary>Just enough of a JSON reader to walk objects and skip everything else.</summary>
        private sealed class Scanner
        {
            private const int MaxDepth = 64;
            private readonly byte[] _b;
            private int _i;

            internal Scanner(byte[] json, int from)
            {
                _b = json;
                _i = from;
            }

            internal char Peek()
            {
                SkipSpace();
                return _i < _b.Length ? (char)_b[_i] : '\0';
            }

            /// <summary>
            /// Walks an object; for each member <paramref name="member"/> gets the key's span with the
            /// reader at the value and returns whether it read the value itself (otherwise it is skipped).
            /// </summary>
            internal bool Object(int depth, Func<(int Start, int Length), bool> member)
            {
                if (depth > MaxDepth) throw new FormatException("nested too deeply");
                Expect('{');
                if (Peek() == '}') { _i++; return true; }
                while (true)
                {
                    if (Peek() != '"') throw new FormatException($"a member name was expected at byte {_i}");
                    var key = String();
                    // The serializer would read "tok\u0065n" as token, and its value into a string.
                    if (Array.IndexOf(_b, (byte)'\\', key.Start, key.Length) >= 0)
                        throw new FormatException($"member names with escapes are not supported (byte {key.Start})");
                    Expect(':');
                    SkipSpace();
                    if (!member(key)) Value(depth);
                    char next = Peek();
                    _i++;
                    if (next == '}') return true;
                    if (next != ',') throw new FormatException($"',' or '}}' was expected at byte {_i - 1}");
                }
            }

            internal bool KeyIs((int Start, int Length) key, string name)
            {
                if (key.Length != name.Length) return false;
                for (int k = 0; k < name.Length; k++)
                {
                    if (_b[key.Start + k] != name[k]) return false;
                }
                return true;
            }

            /// <summary>Reads a string; returns the span of its contents between the quotes.</summary>
            internal (int Start, int Length) String()
            {
                Expect('"');
                int start = _i;
                while (_i < _b.Length)
                {
                    byte c = _b[_i];
                    if (c == '"') return (start, _i++ - start);
                    if (c < 0x20) throw new FormatException($"a control character in a string at byte {_i}");
                    _i += c == '\\' ? 2 : 1;
                }
                throw new FormatException("a string does not end");
            }

            internal void End()
            {
                if (Peek() != '\0') throw new FormatException($"something follows the document at byte {_i}");
            }

            private void Value(int depth)
            {
                switch (Peek())
                {
                    case '{':
                        Object(depth + 1, _ => false);
                        return;
                    case '[':
                        if (depth + 1 > MaxDepth) throw new FormatException("nested too deeply");
                        _i++;
                        if (Peek() == ']') { _i++; return; }
                        while (true)
                        {
                            Value(depth + 1);
                            char next = Peek();
                            _i++;
                            if (next == ']') return;
                            if (next != ',') throw new FormatException($"',' or ']' was expected at byte {_i - 1}");
                        }
                    case '"':
                        String();
                        return;
                    default:
                        // A number, true, false or null: the serializer checks which.
                        int start = _i;
                        while (_i < _b.Length && "{}[],: \t\r\n\"".IndexOf((char)_b[_i]) < 0) _i++;
                        if (_i == start) throw new FormatException($"a value was expected at byte {_i}");
                        return;
                }
            }

            private void Expect(char c)
            {
                if (Peek() != c) throw new FormatException($"'{c}' was expected at byte {_i}");
                _i++;
            }

            private void SkipSpace()
            {
                while (_i < _b.Length && (_b[_i] == ' ' || _b[_i] == '\t' || _b[_i] == '\r' || _b[_i] == '\n')) _i++;
            }
        }
    }
}
