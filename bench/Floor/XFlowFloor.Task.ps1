# The idle floor's entry script: shaped like XFlowDelivery.Task.ps1 (an advanced script with a
# mandatory -ConfigPath, Import-Module of the assembly beside it, one cmdlet, an explicit exit
# code), without any of the work.
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string]$ConfigPath
)
Import-Module -Name "$PSScriptRoot/XFlowFloor.dll" -ErrorAction Stop
exit (Invoke-XFlowFloor)
