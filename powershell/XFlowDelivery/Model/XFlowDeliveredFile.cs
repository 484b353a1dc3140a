using System;

namespace XFlowDelivery.Model
{
    /// <summary>One file that was written into an import folder and (with -AckMode Ack) acknowledged.</summary>
    public sealed class XFlowDeliveredFile
    {
        /// <summary>XFlow's delivery id.</summary>
        public string Id { get; set; } = "";

        /// <summary>"SDLoen" or "Prisme".</summary>
        public string System { get; set; } = "";

        public string FileName { get; set; } = "";

        /// <summary>Full path of the published file.</summary>
        public string Path { get; set; } = "";

        /// <summary>Lower-case hex SHA-256 of the file's content, as verified.</summary>
        public string Sha256 { get; set; } = "";

        public long Size { get; set; }

        /// <summary>When XFlow created the delivery (null if the server did not say).</summary>
        public DateTimeOffset? CreatedAt { get; set; }

        public override string ToString() => Path;
    }
}
