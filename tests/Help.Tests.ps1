# The MAML help shipped in the module (en-US/XFlowDelivery.dll-Help.xml): a synopsis, a
# description, every parameter described, a syntax that matches the cmdlet's parameter sets, and
# at least two examples for every exported cmdlet.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Cmdlets = @((Get-Module XFlowDelivery).ExportedCmdlets.Keys | ForEach-Object { @{ Name = $_ } })
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Common = [Management.Automation.Cmdlet]::CommonParameters + [Management.Automation.Cmdlet]::OptionalCommonParameters
}

Describe 'Help for <Name>' -ForEach $script:Cmdlets {
    BeforeAll { $script:Help = Get-Help $Name -Full }

    It 'comes from the shipped MAML file, with a synopsis and a description' {
        $script:Help.Synopsis | Should -Not -BeNullOrEmpty
        # Without MAML, PowerShell makes up a synopsis from the syntax ("Name [-Param] ...").
        $script:Help.Synopsis | Should -Not -Match ('^\s*' + [regex]::Escape($Name) + '\s')
        ($script:Help.description.Text -join ' ') | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        $parameters = (Get-Command $Name).Parameters.Keys | Where-Object { $script:Common -notcontains $_ }
        foreach ($p in $parameters) {
            $entry = $script:Help.parameters.parameter | Where-Object name -EQ $p
            $entry | Should -Not -BeNullOrEmpty -Because "-$p of $Name"
            ($entry.description.Text -join ' ') | Should -Not -BeNullOrEmpty -Because "-$p of $Name"
        }
    }

    It 'shows each parameter set in its syntax, with exactly that set''s parameters' {
        $shown = @($script:Help.syntax.syntaxItem | ForEach-Object { (@($_.parameter | ForEach-Object name) | Sort-Object) -join ' ' })
        foreach ($set in (Get-Command $Name).ParameterSets) {
            $names = (@($set.Parameters | ForEach-Object Name | Where-Object { $script:Common -notcontains $_ }) | Sort-Object) -join ' '
            $shown | Should -Contain $names -Because "the parameter set '$($set.Name)' of $Name"
        }
        $shown.Count | Should -Be @((Get-Command $Name).ParameterSets).Count
    }

    It 'shows at least two real examples with -Examples' {
        $examples = @((Get-Help $Name -Examples).examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($e in $examples) {
            $e.code | Should -Match ([regex]::Escape($Name))
            ($e.remarks.Text -join ' ') | Should -Not -BeNullOrEmpty
        }
    }
}
