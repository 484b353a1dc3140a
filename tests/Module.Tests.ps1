# The built module as an administrator gets it: manifest, import/re-import, native loading and
# the ABI check, parameter validation that needs no server.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Manifest = Get-XFlowModuleManifest
    $script:Work = New-XFlowTestDirectory -Name 'xflow-module'
    # Import from a different working directory than the repository.
    Push-Location $script:Work
    Import-Module $script:Manifest -Force
}

AfterAll {
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Module manifest' {
    It 'is valid and exports exactly the XFlowDelivery cmdlets' {
        $info = Test-ModuleManifest -Path $script:Manifest
        $info.Version | Should -Be ([version]'0.1.0')
        @($info.ExportedCmdlets.Keys | Sort-Object) | Should -Be @(
            'Get-XFlowDeliveryConfig', 'Get-XFlowDeliveryHistory', 'Get-XFlowDeliveryStatus', 'Invoke-XFlowDelivery',
            'New-XFlowDeliveryConfig', 'Register-XFlowDeliveryTask', 'Remove-XFlowDeliveryQuarantine',
            'Test-XFlowDeliveryConnection', 'Unregister-XFlowDeliveryTask')
        # The module as loaded exports the same cmdlets (the DLL has no others marked public by accident).
        @((Get-Module XFlowDelivery).ExportedCmdlets.Keys | Sort-Object) | Should -Be @($info.ExportedCmdlets.Keys | Sort-Object)
        $info.Description | Should -Not -BeNullOrEmpty
        $info.Tags | Should -Contain 'XFlow'
        $info.ProjectUri | Should -Not -BeNullOrEmpty
        $info.LicenseUri | Should -Not -BeNullOrEmpty
        @($info.ExportedFormatFiles).Count | Should -Be 1
        @($info.ExportedFunctions.Keys).Count | Should -Be 0
        @($info.ExportedAliases.Keys).Count | Should -Be 0
        $info.CompatiblePSEditions | Should -Contain 'Desktop'
        $info.CompatiblePSEditions | Should -Contain 'Core'
        $info.PowerShellVersion | Should -Be ([version]'5.1')
    }

    It 'ships the native engine for this platform in an os-arch folder' {
        $module = Get-Module XFlowDelivery
        $native = Get-ChildItem -LiteralPath $module.ModuleBase -Directory |
            Get-ChildItem -File -Filter 'xflow_delivery.*'
        @($native).Count | Should -Be 1
        $native.Directory.Name | Should -Match '^(linux|osx|win)-(x64|arm64)$'
    }

    It 'declares its output types' {
        (Get-Command Invoke-XFlowDelivery).OutputType.Name | Should -Contain 'XFlowDelivery.Model.XFlowDeliveredFile'
        (Get-Command Invoke-XFlowDelivery).OutputType.Name | Should -Contain 'XFlowDelivery.Model.XFlowRunSummary'
        foreach ($name in 'New-XFlowDeliveryConfig', 'Get-XFlowDeliveryConfig', 'Test-XFlowDeliveryConnection', 'Get-XFlowDeliveryHistory',
            'Get-XFlowDeliveryStatus', 'Remove-XFlowDeliveryQuarantine', 'Register-XFlowDeliveryTask') {
            (Get-Command $name).OutputType.Name | Should -Match '^XFlowDelivery\.Model\.' -Because $name
        }
    }

    It 'imports silently' {
        $script = Join-Path $script:Work 'import-quiet.ps1'
        Set-Content -LiteralPath $script -Encoding utf8 -Value 'param($Manifest) Import-Module $Manifest -ErrorAction Stop -Verbose:$false *>&1 | ForEach-Object { "STREAM: $_" }; exit 0'
        $result = Invoke-XFlowChildPwsh -ScriptPath $script -ArgumentList @($script:Manifest)
        $result.ExitCode | Should -Be 0
        $result.Output.Trim() | Should -BeNullOrEmpty
    }
}

Describe 'Importing' {
    It 'can be imported twice, with -Force, and again after Remove-Module' {
        { Import-Module $script:Manifest } | Should -Not -Throw
        { Import-Module $script:Manifest } | Should -Not -Throw
        { Import-Module $script:Manifest -Force } | Should -Not -Throw
        { Import-Module $script:Manifest -Force } | Should -Not -Throw
        Remove-Module XFlowDelivery
        Get-Command Invoke-XFlowDelivery -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        { Import-Module $script:Manifest } | Should -Not -Throw
        Get-Command Invoke-XFlowDelivery | Should -Not -BeNullOrEmpty
        Remove-Module XFlowDelivery
        { Import-Module $script:Manifest -Force } | Should -Not -Throw
        Get-Command Invoke-XFlowDelivery | Should -Not -BeNullOrEmpty
    }

    It 'works when imported by relative path from another location' {
        $moduleDir = Split-Path -Parent $script:Manifest
        Push-Location $moduleDir
        try {
            { Import-Module ./XFlowDelivery.psd1 -Force } | Should -Not -Throw
        }
        finally { Pop-Location }
        Get-Command Invoke-XFlowDelivery | Should -Not -BeNullOrEmpty
    }
}

Describe 'Native engine and ABI check' {
    BeforeAll {
        $script:Assembly = (Get-Module XFlowDelivery).ImplementingAssembly
        $script:Loader = $script:Assembly.GetType('XFlowDelivery.Native.NativeLibraryLoader', $true)
        $script:Static = [Reflection.BindingFlags]'NonPublic, Public, Static'
    }

    It 'expects ABI version 2 and the loaded engine reports 2' {
        $script:Loader.GetField('ExpectedAbiVersion', $script:Static).GetRawConstantValue() | Should -Be 2
        $native = $script:Assembly.GetType('XFlowDelivery.Native.NativeMethods', $true)
        $native.GetMethod('xfd_abi_version', $script:Static).Invoke($null, @()) | Should -Be 2
    }

    It 'refuses a native engine with another ABI version, naming both versions and the file' {
        $check = $script:Loader.GetMethod('CheckAbiVersion', $script:Static)
        { $check.Invoke($null, @([uint32]2, '/x/xflow_delivery.so')) } | Should -Not -Throw
        $err = { $check.Invoke($null, @([uint32]1, '/x/xflow_delivery.so')) } | Should -Throw -PassThru
        $inner = $err.Exception.InnerException
        while ($inner -and $inner -isnot [XFlowDelivery.Native.XFlowDeliveryLoadException]) { $inner = $inner.InnerException }
        $inner | Should -Not -BeNullOrEmpty
        $inner.Message | Should -Match 'ABI version 1'
        $inner.Message | Should -Match 'expects ABI version 2'
        $inner.Message | Should -Match ([regex]::Escape('/x/xflow_delivery.so'))
    }

    It 'fails to import with a clear error naming the expected file when the native engine is missing' {
        $copy = Join-Path $script:Work 'broken/XFlowDelivery'
        New-Item -ItemType Directory -Path $copy -Force | Out-Null
        $source = Split-Path -Parent $script:Manifest
        Get-ChildItem -LiteralPath $source -File | Copy-Item -Destination $copy
        $script = Join-Path $script:Work 'import-broken.ps1'
        Set-Content -LiteralPath $script -Encoding utf8 -Value @'
param($Manifest)
try {
    Import-Module $Manifest -ErrorAction Stop
    'IMPORTED'
    exit 0
} catch {
    'IMPORT FAILED: ' + $_.Exception.Message
    exit 3
}
'@
        $result = Invoke-XFlowChildPwsh -ScriptPath $script -ArgumentList @((Join-Path $copy 'XFlowDelivery.psd1'))
        $result.ExitCode | Should -Be 3 -Because $result.Output
        $result.Output | Should -Match 'IMPORT FAILED'
        $result.Output | Should -Match 'native engine'
        $result.Output | Should -Match ([regex]::Escape('xflow_delivery.'))
        $result.Output | Should -Match '(linux|osx|win)-(x64|arm64)'
    }
}

Describe 'Parameter validation (no server needed)' {
    BeforeAll {
        $script:Token = ConvertTo-SecureString (New-XFlowTestToken) -AsPlainText -Force
        $script:State = New-XFlowTestDirectory -Name 'xflow-state'
    }

    It 'rejects a path on a non-file-system provider with ErrorId InvalidPath' {
        $err = { Invoke-XFlowDelivery -BaseUrl 'https://127.0.0.1:9/' -ApiToken $script:Token -SdLoenPath 'Env:\XFLOW' -StatePath $script:State } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidPath,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.TargetObject | Should -Be 'Env:\XFLOW'
    }

    It 'needs at least one import folder (ErrorId NoImportFolder)' {
        $err = { Invoke-XFlowDelivery -BaseUrl 'https://127.0.0.1:9/' -ApiToken $script:Token -StatePath $script:State } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'NoImportFolder,*'
    }

    It 'refuses plain http to a remote host (engine ErrorId InsecureUrl)' {
        $err = { Invoke-XFlowDelivery -BaseUrl 'http://xflow.invalid/api/' -ApiToken $script:Token -SdLoenPath $script:State -StatePath $script:State -AllowInsecureHttp } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'InsecureUrl,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
    }

    It 'rejects -TimeoutSec outside 1..3600 and -AckMode outside Ack/None at binding' {
        { Invoke-XFlowDelivery -BaseUrl 'https://127.0.0.1:9/' -ApiToken $script:Token -SdLoenPath $script:State -StatePath $script:State -TimeoutSec 0 } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        { Invoke-XFlowDelivery -BaseUrl 'https://127.0.0.1:9/' -ApiToken $script:Token -SdLoenPath $script:State -StatePath $script:State -AckMode Maybe } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
    }
}
