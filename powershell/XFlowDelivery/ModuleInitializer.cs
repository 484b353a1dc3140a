using System.Management.Automation;
using XFlowDelivery.Native;

namespace XFlowDelivery
{
    /// <summary>
    /// Runs on every Import-Module (including -Force and re-import after Remove-Module): loads the
    /// native engine and checks its ABI version, so a broken installation fails at import with a
    /// message naming the expected file instead of at the first delivery.
    /// </summary>
    public sealed class ModuleInitializer : IModuleAssemblyInitializer
    {
        public void OnImport()
        {
            NativeLibraryLoader.EnsureLoaded();
        }
    }
}
