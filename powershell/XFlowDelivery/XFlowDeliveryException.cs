using System;
using XFlowDelivery.Native;

namespace XFlowDelivery
{
    /// <summary>
    /// An error reported by the delivery engine or by the cmdlet's own validation. ErrorId is the
    /// stable identifier that becomes the ErrorRecord's ErrorId (see <see cref="ErrorMapping"/>).
    /// </summary>
    public sealed class XFlowDeliveryException : Exception
    {
        public string ErrorId { get; }
        public string Category { get; }
        public string? Target { get; }

        internal XFlowDeliveryException(EngineError error)
            : this(error.ErrorId ?? "Internal", error.Category ?? "NotSpecified", error.Message ?? error.ErrorId ?? "unknown error", error.Target)
        {
        }

        public XFlowDeliveryException(string errorId, string category, string message, string? target)
            : base(message)
        {
            ErrorId = errorId;
            Category = category;
            Target = target;
        }
    }
}
