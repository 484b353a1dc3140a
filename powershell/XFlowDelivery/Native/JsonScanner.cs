using System;
using System.Text;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// Reads JSON text from a buffer, value by value, for the few fixed shapes this module reads
    /// on every run: the engine's events, the configuration file and the installation registry's
    /// entries (and the history answer, whose size made the serializer slow). A fresh process
    /// paid 40 to 70 ms for DataContractJsonSerializer's first use on those (docs/benchmarks.md);
    /// the task starts 480 times a day. Members come in any order, unknown members of any shape
    /// are skipped, every escape is read; anything that is not JSON, or not the expected type,
    /// is a <see cref="FormatException"/> or <see cref="OverflowException"/> naming the byte.
    /// What the serializer still reads (other answers, and what is written) stays with it.
    /// </summary>
    internal unsafe struct JsonScanner
    {
        private readonly byte* _json;
        private readonly long _length;
        private long _at;

        private JsonScanner(byte* json, long length)
        {
            _json = json;
            _length = length;
            _at = 0;
        }

        /// <summary>Reads one value of the caller's shape.</summary>
        internal delegate T Shape<T>(ref JsonScanner json);

        /// <summary>
        /// Reads the whole buffer as one value of <paramref name="shape"/>; null, with the reason in
        /// <paramref name="problem"/>, when it is not.
        /// </summary>
        internal static T? TryRead<T>(byte* json, long length, Shape<T> shape, out string problem) where T : class
        {
            if (json == null || length <= 0)
            {
                problem = "an empty buffer";
                return null;
            }
            try
            {
                var scanner = new JsonScanner(json, length);
                var value = shape(ref scanner);
                scanner.SkipWhitespace();
                if (scanner._at == length)
                {
                    problem = "";
                    return value;
                }
                problem = $"text after the JSON value at byte {scanner._at}";
            }
            catch (Exception ex) when (ex is FormatException || ex is OverflowException)
            {
                problem = ex.Message;
            }
            return null;
        }

        /// <summary>Reads a byte array (pinned while it is read).</summary>
        internal static T? TryRead<T>(byte[] json, Shape<T> shape, out string problem) where T : class
        {
            fixed (byte* p = json)
            {
                return TryRead(p, json.Length, shape, out problem);
            }
        }

        /// <summary>true or false.</summary>
        internal bool ReadBoolean()
        {
            SkipWhitespace();
            if (Peek() == 't')
            {
                Literal("true");
                return true;
            }
            if (Peek() == 'f')
            {
                Literal("false");
                return false;
            }
            throw Problem("true or false expected");
        }

        /// <summary>An integer, or null for JSON null.</summary>
        internal long? ReadNullableInteger() => TryNull() ? (long?)null : ReadInteger();

        /// <summary>An integer that fits an int.</summary>
        internal int ReadInt32() => checked((int)ReadInteger());

        /// <summary>After '{' or a member's value: the next member's name (its ':' read), or null once the '}' is read.</summary>
        internal string? NextMember(ref bool first)
        {
            if (!NextElement(ref first, '}')) return null;
            var name = ReadString();
            Expect(':');
            return name;
        }

        /// <summary>After '[' or an element: true at the next element, false once the closing bracket is read.</summary>
        internal bool NextElement(ref bool first, char close = ']')
        {
            SkipWhitespace();
            if (Peek() == close)
            {
                _at++;
                return false;
            }
            if (!first) Expect(',');
            first = false;
            return true;
        }

        /// <summary>A string, or null for JSON null.</summary>
        internal string? ReadText() => TryNull() ? null : ReadString();

        /// <summary>
        /// A string's contents as they stand between the quotes, escapes not read: the offset of
        /// its first byte and its length. For a secret that must never become a managed string.
        /// </summary>
        internal (int Start, int Length) ReadStringSpan()
        {
            Expect('"');
            var start = _at;
            while (_at < _length && _json[_at] != '"')
            {
                if (_json[_at] < 0x20) throw Problem("a control character in a string");
                _at += _json[_at] == '\\' ? 2 : 1;
            }
            if (_at >= _length) throw Problem("an unterminated string");
            _at++;
            return (checked((int)start), checked((int)(_at - 1 - start)));
        }

        private string ReadString()
        {
            Expect('"');
            var start = _at;
            while (_at < _length && _json[_at] != '"' && _json[_at] != '\\' && _json[_at] >= 0x20) _at++;
            if (_at < _length && _json[_at] == '"')
            {
                _at++;
                return Encoding.UTF8.GetString(_json + start, checked((int)(_at - 1 - start)));
            }
            var text = new StringBuilder();
            text.Append(Encoding.UTF8.GetString(_json + start, checked((int)(_at - start))));
            while (true)
            {
                if (_at >= _length) throw Problem("an unterminated string");
                var c = _json[_at++];
                if (c == '"') return text.ToString();
                if (c < 0x20) throw Problem("a control character in a string");
                if (c != '\\')
                {
                    var run = _at - 1;
                    while (_at < _length && _json[_at] != '"' && _json[_at] != '\\' && _json[_at] >= 0x20) _at++;
                    text.Append(Encoding.UTF8.GetString(_json + run, checked((int)(_at - run))));
                    continue;
                }
                if (_at >= _length) throw Problem("an unterminated string");
                switch ((char)_json[_at++])
                {
                    case '"': text.Append('"'); break;
                    case '\\': text.Append('\\'); break;
                    case '/': text.Append('/'); break;
                    case 'b': text.Append('\b'); break;
                    case 'f': text.Append('\f'); break;
                    case 'n': text.Append('\n'); break;
                    case 'r': text.Append('\r'); break;
                    case 't': text.Append('\t'); break;
                    case 'u': text.Append(ReadHexUnit()); break;
                    default: throw Problem("an unknown escape");
                }
            }
        }

        /// <summary>The four hex digits of a \u escape: one UTF-16 unit (a pair's halves come as two escapes).</summary>
        private char ReadHexUnit()
        {
            if (_at + 4 > _length) throw Problem("a cut-short \\u escape");
            int unit = 0;
            for (int i = 0; i < 4; i++)
            {
                int c = _json[_at++];
                int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (digit < 0) throw Problem("a \\u escape that is not hexadecimal");
                unit = unit * 16 + digit;
            }
            return (char)unit;
        }

        internal long ReadInteger()
        {
            SkipWhitespace();
            bool negative = Peek() == '-';
            if (negative) _at++;
            var start = _at;
            long value = 0;
            while (_at < _length && _json[_at] >= '0' && _json[_at] <= '9')
            {
                value = checked(value * 10 + (_json[_at++] - '0'));
            }
            if (_at == start || (_at < _length && (_json[_at] == '.' || _json[_at] == 'e' || _json[_at] == 'E')))
            {
                throw Problem("a number that is not an integer");
            }
            return negative ? -value : value;
        }

        /// <summary>
        /// Skips one value of any kind (a member this module does not read), nested at most
        /// <see cref="MaxDepth"/> deep: deeper is a FormatException, never a stack overflow,
        /// which no handler could catch.
        /// </summary>
        internal void SkipValue() => SkipValue(0);

        /// <summary>Far deeper than any shape this module reads or writes.</summary>
        private const int MaxDepth = 64;

        private void SkipValue(int depth)
        {
            SkipWhitespace();
            switch (Peek())
            {
                case '"': ReadString(); return;
                case '{':
                    Enter(depth);
                    for (bool first = true; NextMember(ref first) != null;) SkipValue(depth + 1);
                    return;
                case '[':
                    Enter(depth);
                    for (bool first = true; NextElement(ref first);) SkipValue(depth + 1);
                    return;
                case 't': Literal("true"); return;
                case 'f': Literal("false"); return;
                case 'n': Literal("null"); return;
                default:
                    var start = _at;
                    while (_at < _length && "+-.0123456789eE".IndexOf((char)_json[_at]) >= 0) _at++;
                    if (_at == start) throw Problem("an unexpected character");
                    return;
            }
        }

        /// <summary>Steps into an object or array that sits <paramref name="depth"/> deep.</summary>
        private void Enter(int depth)
        {
            if (depth == MaxDepth) throw Problem($"values nested more than {MaxDepth} deep");
            _at++;
        }

        internal bool TryNull()
        {
            SkipWhitespace();
            if (Peek() != 'n') return false;
            Literal("null");
            return true;
        }

        private void Literal(string word)
        {
            foreach (var c in word)
            {
                if (_at >= _length || _json[_at] != c) throw Problem($"an unexpected character (not {word})");
                _at++;
            }
        }

        internal void Expect(char c)
        {
            SkipWhitespace();
            if (Peek() != c) throw Problem($"'{c}' expected");
            _at++;
        }

        private char Peek() => _at < _length ? (char)_json[_at] : '\0';

        private void SkipWhitespace()
        {
            while (_at < _length && (_json[_at] == ' ' || _json[_at] == '\t' || _json[_at] == '\n' || _json[_at] == '\r')) _at++;
        }

        private FormatException Problem(string what) => new FormatException($"{what} at byte {_at}");
    }
}
