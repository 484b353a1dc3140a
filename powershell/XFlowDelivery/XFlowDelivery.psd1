@{
    RootModule           = 'XFlowDelivery.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = 'e76db851-af58-47e8-9716-773ace333474'
    Author               = 'XFlowDelivery contributors'
    CompanyName          = 'XFlowDelivery contributors'
    Copyright            = '(c) XFlowDelivery contributors. MIT License.'
    Description          = 'Fetches pending XFlow deliveries (SD Løn payroll files and Prisme finance postings) over HTTPS and writes each exactly once, verified and atomically, into the import folder of SD Løn or Prisme.'
    PowerShellVersion    = '5.1'
    # Windows PowerShell 5.1 loads a netstandard2.0 assembly without facades from .NET Framework 4.7.2 on.
    DotNetFrameworkVersion = '4.7.2'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('XFlowDelivery.Format.ps1xml')
    CmdletsToExport      = @(
        'Invoke-XFlowDelivery'
        'New-XFlowDeliveryConfig'
        'Get-XFlowDeliveryConfig'
        'Test-XFlowDeliveryConnection'
        'Get-XFlowDeliveryHistory'
        'Get-XFlowDeliveryStatus'
        'Remove-XFlowDeliveryQuarantine'
        'Register-XFlowDeliveryTask'
        'Unregister-XFlowDeliveryTask'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    FileList             = @('XFlowDelivery.dll', 'XFlowDelivery.psd1', 'XFlowDelivery.Format.ps1xml', 'XFlowDelivery.Task.ps1', 'en-US/XFlowDelivery.dll-Help.xml')
    PrivateData          = @{
        PSData = @{
            Tags       = @('XFlow', 'SDLoen', 'Prisme', 'Payroll', 'Delivery', 'ScheduledTask', 'Windows', 'Linux', 'PSEdition_Desktop', 'PSEdition_Core')
            ProjectUri = 'https://github.com/xflow-delivery/xflow-delivery'
            LicenseUri = 'https://github.com/xflow-delivery/xflow-delivery/blob/main/LICENSE'
            ReleaseNotes = 'Configuration file with a protected token, connection test, history and status, scheduled task with documented exit codes and events.'
        }
    }
}
