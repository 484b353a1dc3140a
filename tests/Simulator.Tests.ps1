# The simulator binary as scripts use it: started from pwsh, its ready line read, two at once on
# port 0, and it survives malformed control requests.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
}

Describe 'xflow-sim started from pwsh' {
    BeforeAll {
        $script:First = Start-XFlowSim
        $script:Second = Start-XFlowSim
    }
    AfterAll {
        Stop-XFlowSim -Sim $script:First
        Stop-XFlowSim -Sim $script:Second
    }

    It 'prints a ready line with a base URL, a control URL and an existing CA file' {
        foreach ($sim in $script:First, $script:Second) {
            $sim.BaseUrl | Should -Match '^https://127\.0\.0\.1:\d+/api/v1$'
            $sim.ControlUrl | Should -Match '^https://127\.0\.0\.1:\d+/control$'
            Test-Path -LiteralPath $sim.CaPath | Should -BeTrue
            Get-Content -LiteralPath $sim.CaPath -Raw | Should -Match 'BEGIN CERTIFICATE'
        }
    }

    It 'runs twice at once on port 0 without sharing a port or a folder' {
        ([Uri]$script:First.BaseUrl).Port | Should -Not -Be ([Uri]$script:Second.BaseUrl).Port
        $script:First.CaPath | Should -Not -Be $script:Second.CaPath
        Add-XFlowSimDelivery -Sim $script:First -Delivery @{ System = 'SDLoen'; FileName = 'a.csv'; Bytes = [byte[]](1, 2, 3) } | Out-Null
        (Get-XFlowSimState -Sim $script:First).deliveries.Count | Should -Be 1
        @((Get-XFlowSimState -Sim $script:Second).deliveries).Count | Should -Be 0
    }

    It 'answers a malformed control request with 400 and a reason, and keeps serving' {
        $err = { Invoke-XFlowSimControl -Sim $script:Second -Method POST -Path 'faults' -Body '{"kind":' } |
            Should -Throw -PassThru
        $err.Exception.Response.StatusCode.value__ | Should -Be 400
        $err.ErrorDetails.Message | Should -Match 'bad_request'
        $unknown = { Invoke-XFlowSimControl -Sim $script:Second -Method POST -Path 'faults' -Body @{ kind = 'noSuchFault' } } |
            Should -Throw -PassThru
        $unknown.ErrorDetails.Message | Should -Match 'unknown fault kind'
        (Get-XFlowSimState -Sim $script:Second).mode | Should -Be 'Ack'
    }

    It 'refuses the delivery API without the token, and never echoes a wrong one' {
        $wrong = 'wrong-' + [Guid]::NewGuid().ToString('N')
        $err = { Invoke-RestMethod -Uri "$($script:First.BaseUrl)/deliveries" -Headers @{ publicApiToken = $wrong } -SkipCertificateCheck } |
            Should -Throw -PassThru
        $err.Exception.Response.StatusCode.value__ | Should -Be 401
        $err.ErrorDetails.Message | Should -Not -Match $wrong
    }
}
