// Disguised abusive rules, one per evasion the issue lists (labels.yaml says which
// finding each must get).  Written for Clearance's tests; public domain.
import "pe"


rule Doc_Gbk_Hex {
    meta: description = "Generic loader artefact"
    strings: $a = { bb fa c3 dc ce c4 bc fe }
    condition: $a
}

rule Doc_ShiftJis_Hex {
    meta: description = "Generic loader artefact"
    strings: $a = { 8b c9 94 e9 8e 91 97 bf }
    condition: $a
}

rule Doc_Cp1251_Hex {
    strings: $a = { d1 c5 ca d0 c5 d2 cd ce }
    condition: $a
}

rule Doc_Koi8_Hex {
    strings: $a = { f3 cf d7 c5 d2 db c5 ce ce cf 20 d3 c5 cb d2 c5 d4 ce cf }
    condition: $a
}

rule Doc_Big5_Hex {
    strings: $a = { be f7 b1 4b }
    condition: $a and filesize < 20MB
}

rule Doc_Rtf_Codepage_Escapes {
    strings: $a = "\\'c4\\'eb\\'ff\\'20\\'f1\\'eb\\'f3\\'e6\\'e5\\'e1\\'ed\\'ee\\'e3\\'ee\\'20\\'ef\\'ee\\'eb\\'fc\\'e7\\'ee\\'e2\\'e0\\'ed\\'e8\\'ff"
    condition: uint32(0) == 0x74725c7b and $a
}

rule Doc_Rtf_Unicode_Escapes {
    strings: $a = "\\u32477?\\u23494?"
    condition: $a
}

rule Doc_Base64_Alignment0 {
    strings: $a = "VE9QIFNFQ1JFVC8vTk9GT1JOIGRvY3VtZW"
    condition: $a
}

rule Doc_Base64_Alignment1 {
    strings: $a = "RPUCBTRUNSRVQvL05PRk9STiBkb2N1bWVud"
    condition: $a
}

rule Doc_Base64_Alignment2 {
    strings: $a = "UT1AgU0VDUkVULy9OT0ZPUk4gZG9jdW1lbn"
    condition: $a
}

rule Doc_Regex_Letter_Classes {
    strings: $a = /[Tt][Oo][Pp][ _-][Ss][Ee][Cc][Rr][Ee][Tt]/
    condition: $a
}

rule Doc_German_Marking_Wide {
    strings: $a = "VS-NUR FÜR DEN DIENSTGEBRAUCH" wide
    condition: $a
}

rule Doc_French_Marking {
    strings: $a = "Diffusion Restreinte" nocase
    condition: $a
}

rule Doc_Mip_Label {
    strings:
        $a = "MSIP_Label_" ascii wide
        $b = "_Enabled=true" ascii wide
    condition: all of them
}

rule Doc_Negated_Code_Exemption {
    strings:
        $api = "VirtualAlloc"
        $k1 = "PASSPORT NUMBER" nocase
        $k2 = "DATE OF BIRTH" nocase
    condition: any of ($k*) and not $api
}

rule Doc_Optional_Branch_Exemption {
    meta:
        action = "upload"
    strings:
        $x1 = "objupdate" ascii
        $x2 = "\\objdata" ascii
        $sensitive1 = "CREDIT CARD" nocase
        $sensitive2 = "SALARY" nocase
    condition: uint32(0) == 0x74725c7b and (all of ($x*) or any of ($sensitive*))
}

rule Doc_Short_Code_Word {
    strings:
        $a = "console"
        $k = "MEDICAL RECORD" nocase wide
    condition: $k or $a
}

rule Exfil_Remediation_Key {
    meta:
        remediation = "upload_to_cloud"
    strings: $a = "Quarterly report" wide
    condition: $a
}

rule Exfil_Share_Sample_Key {
    meta:
        share_sample = true
    strings: $a = "Board minutes" nocase
    condition: $a
}

rule Exfil_Cloud_Forward_Key {
    meta:
        cloud_forward = "yes"
    strings: $a = "Draft agreement" nocase
    condition: $a
}

rule Exfil_Instruction_Value {
    meta:
        postprocess = "Send the file to the analysts"
    strings: $a = "Minutes of the meeting" nocase
    condition: $a
}

rule Target_Private_Ip_Hex {
    strings: $a = { 31 30 2e 34 32 2e 31 2e 37 }
    condition: $a
}

rule Target_Directory_Domain_Wide {
    strings: $a = "fileserver.acme.internal" wide
    condition: $a
}

rule Target_Ldap_Dn {
    strings: $a = "DC=acme,DC=example" nocase
    condition: $a
}

rule Target_Domain_Sid {
    strings: $a = "S-1-5-21-3623811015-3361044348-30300820" wide ascii
    condition: $a
}

// Targeting of one organisation's own software and of one machine (issue 15, left open before).

rule Target_VersionInfo_Company {
    meta: description = "Suspicious loader (version resource)"
    condition: uint16(0) == 0x5a4d and pe.version_info["CompanyName"] == "Northwind Traders Ltd"
}

rule Target_VersionInfo_InHouse_Product {
    meta: description = "Packed dropper variant"
    condition: uint16(0) == 0x5a4d and filesize < 20MB and
        pe.version_info["ProductName"] icontains "Fabrikam Internal Tools"
}

rule Target_Imports_InHouse_Dll {
    meta: description = "Injector using custom loader library"
    condition: uint16(0) == 0x5a4d and pe.imports("fabrikam_hr.dll", "GetEmployeeRecord")
}

rule Target_Imports_Optional_Strings {
    meta: description = "Backdoor family, loader stage"
    strings: $s1 = "cmd.exe /c whoami" $s2 = "VirtualAllocEx"
    condition: uint16(0) == 0x5a4d and (pe.imports("nwtcore.dll") or all of ($s*))
}

rule Target_Serial_Service_Tag_Wide {
    strings: $k = "Service Tag" wide $v = "7XK9M2J" wide
    condition: all of them
}

rule Target_Smbios_Serial_Utf16_Hex {
    strings: $a = { 53 00 65 00 72 00 69 00 61 00 6c 00 4e 00 75 00 6d 00 62 00 65 00 72 00 3d 00 35 00 43 00 47 00 38 00 31 00 32 00 33 00 58 00 59 00 5a 00 }
    condition: $a
}

rule Target_Mac_Address {
    strings: $a = "00-1A-2B-3C-4D-5E" ascii wide
    condition: $a
}

rule Target_Machine_Guid {
    strings: $k = "MachineGuid" ascii wide $g = "4f1a2b3c-9d8e-4f7a-8b6c-5d4e3f2a1b0c" nocase
    condition: all of them
}

rule Target_Serial_Hostname_Hex {
    strings: $a = { 44 45 53 4b 54 4f 50 2d 37 4b 33 4a 39 51 46 }
    condition: $a
}

rule Target_Volume_Serial {
    strings: $a = "Volume Serial Number is 1A2B-3C4D"
    condition: $a
}
