@{
    RootModule        = 'XFlowFloor.dll'
    ModuleVersion     = '0.1.0'
    GUID              = '0c6e5c1e-5a7e-4b7e-9a57-2f1b1c0a0b01'
    CmdletsToExport   = @('Invoke-XFlowFloor')
    FunctionsToExport = @()
    AliasesToExport   = @()
    VariablesToExport = @()
}
