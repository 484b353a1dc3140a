# Run-level failures are terminating errors with a stable ErrorId, never a crash of pwsh.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-errors'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Folder = New-XFlowTestDirectory -Name 'SD Løn'
    $script:State = New-XFlowTestDirectory -Name 'state'
    $script:Token = ConvertTo-SecureString (New-XFlowTestToken) -AsPlainText -Force
}

AfterAll {
    Pop-Location
    Remove-Item -LiteralPath $script:Work, $script:Folder, $script:State -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Unreachable server' {
    It 'is a terminating error with ErrorId ServerUnreachable, and the session goes on' {
        $url = "https://127.0.0.1:$(Get-XFlowFreeTcpPort)/api/"
        $err = { Invoke-XFlowDelivery -BaseUrl $url -ApiToken $script:Token -SdLoenPath $script:Folder -StatePath $script:State -TimeoutSec 5 } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'ServerUnreachable,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $err.CategoryInfo.Category | Should -Be 'ConnectionError'
        "$($err.TargetObject)" | Should -Match '127\.0\.0\.1'
        $err.Exception | Should -BeOfType ([XFlowDelivery.XFlowDeliveryException])
        $err.Exception.ErrorId | Should -Be 'ServerUnreachable'
        @(Get-ChildItem -LiteralPath $script:Folder -Force).Count | Should -Be 0
        # The session and the native engine are still usable: a second run starts, reaches the
        # network again and fails the same way (a poisoned engine or session would fail otherwise).
        { Invoke-XFlowDelivery -BaseUrl $url -ApiToken $script:Token -SdLoenPath $script:Folder -StatePath $script:State -TimeoutSec 5 } |
            Should -Throw -ErrorId 'ServerUnreachable,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
    }

    It 'does not crash a separate pwsh process (-File), which can catch it and carry on' {
        $script = Join-Path $script:Work 'unreachable.ps1'
        Set-Content -LiteralPath $script -Encoding utf8 -Value @'
param($Manifest, $Url, $Folder, $State)
$ErrorActionPreference = 'Stop'
Import-Module $Manifest
$token = ConvertTo-SecureString ('t-' + [Guid]::NewGuid()) -AsPlainText -Force
try {
    Invoke-XFlowDelivery -BaseUrl $Url -ApiToken $token -SdLoenPath $Folder -StatePath $State -TimeoutSec 5
    'NO ERROR'
} catch {
    'CAUGHT ' + $_.FullyQualifiedErrorId
}
'STILL ALIVE'
exit 0
'@
        $url = "https://127.0.0.1:$(Get-XFlowFreeTcpPort)/"
        $result = Invoke-XFlowChildPwsh -ScriptPath $script -ArgumentList @((Get-XFlowModuleManifest), $url, $script:Folder, $script:State)
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $result.Output | Should -Match 'CAUGHT ServerUnreachable,XFlowDelivery\.Cmdlets\.InvokeXFlowDeliveryCommand'
        $result.Output | Should -Match 'STILL ALIVE'
    }
}

Describe 'Authentication' {
    BeforeAll { $script:Sim = Start-XFlowSim }
    AfterAll { Stop-XFlowSim -Sim $script:Sim }

    It 'a wrong token is a terminating error with ErrorId AuthenticationFailed' {
        Reset-XFlowSim -Sim $script:Sim
        $wrong = ConvertTo-SecureString ($script:Sim.Token + 'x') -AsPlainText -Force
        $err = { Invoke-XFlowDelivery -BaseUrl $script:Sim.BaseUrl -ApiToken $wrong -CaCertificatePath $script:Sim.CaPath -SdLoenPath $script:Folder -StatePath $script:State -TimeoutSec 10 } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'AuthenticationFailed,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $err.CategoryInfo.Category | Should -Be 'AuthenticationError'
    }
}
