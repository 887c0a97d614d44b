; Inno Setup 6 script for the counter desk on a Windows window PC.
;
; Build first, on Windows:   py build\build.py          (makes build\work\dist\counter-app\)
; then:                       iscc /DAppVersion=1.2.3 build\windows\installer.iss
; Output: build\dist\counter-app-setup-<version>.exe
;
; What it does: copies the onedir bundle to C:\Program Files\counter-app, adds Start-menu
; shortcuts for the desk and for the console "debug" twin, and optionally runs
; `counter-app-debug.exe setup ...` unattended when the installer is given /SERVER= /WINDOW=
; /CODE= (see docs/deploy.md). The machine config goes to C:\ProgramData\counter-app\config.toml,
; written by `setup`; the device credential goes to Windows Credential Manager. Uninstalling
; keeps both (a reinstall does not need a new enrollment code).
; NOT RUN HERE: this repository is built and tested on Linux; this script is untested.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif

[Setup]
AppId={{6B0E7C1E-3C5B-4B8E-9F1E-5A4C1D2B7C11}
AppName=counter-app
AppVersion={#AppVersion}
AppPublisher=counter-app
DefaultDirName={autopf}\counter-app
DefaultGroupName=counter-app
DisableProgramGroupPage=yes
PrivilegesRequired=admin
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\dist
OutputBaseFilename=counter-app-setup-{#AppVersion}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\counter-app.exe

[Languages]
Name: "zh"; MessagesFile: "compiler:Languages\ChineseSimplified.isl"
Name: "en"; MessagesFile: "compiler:Default.isl"

[Files]
Source: "..\work\dist\counter-app\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\柜台 Counter desk"; Filename: "{app}\counter-app.exe"
Name: "{group}\柜台诊断 Counter doctor"; Filename: "{cmd}"; Parameters: "/k ""{app}\counter-app-debug.exe"" doctor"
Name: "{autodesktop}\柜台 Counter desk"; Filename: "{app}\counter-app.exe"

[Run]
; Unattended provisioning when the deployment passes /SERVER=... /WINDOW=... /CODE=...
Filename: "{app}\counter-app-debug.exe"; Parameters: "setup --no-input --server-url ""{param:SERVER}"" --window {param:WINDOW} --enrollment-code ""{param:CODE}"" {param:SETUPARGS}"; Flags: runhidden waituntilterminated; Check: HasSetupParams
; Check the installation itself.
Filename: "{app}\counter-app-debug.exe"; Parameters: "--self-test"; Flags: runhidden waituntilterminated

[Code]
function HasSetupParams(): Boolean;
begin
  Result := (ExpandConstant('{param:SERVER|}') <> '') and (ExpandConstant('{param:WINDOW|}') <> '');
end;
