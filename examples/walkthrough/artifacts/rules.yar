/*
   Detection rules written for the Clearance worked example.  They look for
   malicious code (and the industry test file), never for documents, people
   or places: the kind of content an independent inspection should approve.
*/

rule Clearance_Demo_EICAR_Test_File
{
    meta:
        author = "Clearance demo"
        description = "The EICAR anti-virus test file (harmless, used to test scanners)"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0
}

rule Clearance_Demo_PHP_Eval_Webshell
{
    meta:
        author = "Clearance demo"
        description = "PHP web shell that evaluates attacker-supplied, base64-encoded code"
    strings:
        $php = "<?php" nocase
        $eval_post = /eval\s*\(\s*base64_decode\s*\(\s*\$_(POST|GET|REQUEST)\[/ nocase
    condition:
        $php and $eval_post and filesize < 200KB
}

rule Clearance_Demo_Credential_Dumper_Commands
{
    meta:
        author = "Clearance demo"
        description = "Command strings of a well-known credential dumping tool inside an executable"
    strings:
        $c1 = "sekurlsa::logonpasswords" ascii wide nocase
        $c2 = "lsadump::sam" ascii wide nocase
        $c3 = "privilege::debug" ascii wide nocase
    condition:
        uint16(0) == 0x5A4D and 2 of ($c*)
}
