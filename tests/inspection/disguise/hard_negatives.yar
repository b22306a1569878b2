// Hard negatives for the targeting of an organisation's software and machines: honest
// malware rules that read PE version information and imports, or name a serial keyword.
// Written for Clearance's tests in the style of public rule sets; public domain.
import "pe"

rule HKTL_Mimikatz_VersionInfo {
    meta: description = "Mimikatz by its version resource" hash = "92804faaab2175dc501d73e814663058c78c0a042675a8937266357bcfb96c50"
    condition: uint16(0) == 0x5a4d and pe.version_info["ProductName"] contains "mimikatz"
}

rule PUA_Adware_Company_With_Sample {
    meta: description = "Bundler adware of one publisher" sha256 = "0d3c6f1c2a9d52e1d0b5c9f6e6c8b1a4f2e9d7c3b5a1f0e8d6c4b2a0f9e7d5c3"
    condition: uint16(0) == 0x5a4d and pe.version_info["CompanyName"] == "Shady Bundles Co., Ltd."
}

rule SUSP_Masquerading_Microsoft_Unsigned {
    meta: description = "Claims Microsoft in its version resource but carries no signature"
    condition: uint16(0) == 0x5a4d and pe.version_info["CompanyName"] contains "Microsoft Corporation"
        and pe.number_of_signatures == 0
}

rule MAL_Loader_Company_And_Strings {
    meta: description = "Loader impersonating a small vendor; its strings are required"
    strings: $a = "ReflectiveLoader" $b = { 4d 5a 90 00 03 00 00 00 }
    condition: uint16(0) == 0x5a4d and pe.version_info["CompanyName"] == "Contoso Software Ltd"
        and all of them
}

rule MAL_Injector_System_Imports {
    meta: description = "Process hollowing by its imports"
    condition: uint16(0) == 0x5a4d and pe.imports("kernel32.dll", "WriteProcessMemory")
        and pe.imports("kernel32.dll", "SetThreadContext") and pe.imports("ntdll.dll", "NtUnmapViewOfSection")
}

rule MAL_Plugin_Own_Dll_With_Imphash {
    meta: description = "Plugin of a RAT importing the RAT's own core library"
    condition: pe.imphash() == "f34d5f2d4577ed6d9ceec516c1f5a744" and pe.imports("ratcore.dll")
}

rule Vendor_Own_Signer_Exclusion {
    meta: description = "Generic packer, excluding the vendor's own signed tools"
    strings: $p = { 60 be ?? ?? ?? ?? 8d be ?? ?? ?? ?? 57 83 cd ff }
    condition: uint16(0) == 0x5a4d and $p and not pe.version_info["CompanyName"] == "Northwind Traders Ltd"
}

rule MAL_Stealer_Reads_MachineGuid {
    meta: description = "Stealer fingerprinting the victim"
    strings: $k = "MachineGuid" wide $r = "SOFTWARE\\Microsoft\\Cryptography" wide $w = "SELECT SerialNumber FROM Win32_BIOS" wide
    condition: uint16(0) == 0x5a4d and all of them
}

rule SUSP_AntiVM_Mac_Prefixes {
    meta: description = "Anti-VM checks of virtual network adapters"
    strings: $a = "00:0C:29" $b = "08:00:27" $c = "00:50:56"
    condition: 2 of them
}
