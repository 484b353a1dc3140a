namespace XFlowDelivery.Model
{
    /// <summary>The scheduled task (Windows) or systemd timer (Linux) Register-XFlowDeliveryTask created or would create.</summary>
    public sealed class XFlowDeliveryTask
    {
        /// <summary>\XFlowDelivery\XFlowDelivery, or xflow-delivery.timer.</summary>
        public string Name { get; set; } = "";
        /// <summary>TaskScheduler or systemd.</summary>
        public string Scheduler { get; set; } = "";
        public string Account { get; set; } = "";
        public string LogonType { get; set; } = "";
        public int IntervalMinutes { get; set; }
        public string ConfigPath { get; set; } = "";
        /// <summary>Where the definition lives: the task path, or the unit folder.</summary>
        public string Location { get; set; } = "";
        /// <summary>Registered (true), or only shown (-WhatIf) / left as it was (false).</summary>
        public bool Registered { get; set; }
        /// <summary>The task XML, or the service and timer units.</summary>
        public string Definition { get; set; } = "";
    }
}
