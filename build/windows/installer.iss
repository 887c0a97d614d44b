; Inno Setup 6 script for the counter desk on a Windows window PC.
;
; Build first, on Windows:   py build\build.py          (makes build\work\dist\counter-app\)
; then:                       iscc /DAppVersion=1.2.3 build\windows\installer.iss
; Output: build\dist\counter-app-setup-<version>.exe
;
; What it does (docs/deploy.md, "Windows"):
; - copies the onedir bundle to C:\Program Files\counter-app and adds Start-menu shortcuts;
; - runs `counter-app-debug.exe --self-test` and FAILS THE INSTALL when it does not exit 0: a
;   message box with the exit code and its output file, and setup.exe exits 1 (for /SILENT
;   deployment tools); the files stay so IT can run `counter-app-debug.exe doctor`;
; - with /SERVER= /WINDOW= [/HALL= /CA=] runs `setup` (no enrollment code) as the installing
;   admin to write the machine config C:\ProgramData\counter-app\config.toml, again failing
;   visibly on a non-zero exit code;
; - enrolment is NOT done by the admin (the credential would land in the admin's Credential
;   Manager, where the clerk's desk cannot read it): with /CODE= the installer stores the code
;   in the clerk's first-run task, a RunOnce entry for every user (HKLM ...\RunOnce cannot target
;   one user, so it is HKCU of each user at first logon via the Active Setup key below), which runs
;   `counter-app-debug.exe enroll --enrollment-code CODE` in the clerk's own session, as the clerk;
;   its output goes to %LOCALAPPDATA%\counter-app\enroll.log and a failure shows a message box.
; Uninstalling keeps the config and credential (a reinstall needs no new code).
; NOT RUN HERE: this repository is built and tested on Linux; this script is untested on
; Windows. tests/test_windows_installer.py only parses it for these properties.

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

[Registry]
; Active Setup: runs once per user at that user's next logon, in their session, so the device
; credential goes to the clerk's Credential Manager (first run as the clerk).
Root: HKLM; Subkey: "Software\Microsoft\Active Setup\Installed Components\counter-app-enrol"; ValueType: string; ValueName: "StubPath"; ValueData: {app}\enrol-as-clerk.cmd; Flags: uninsdeletekey; Check: HasEnrollmentCode
Root: HKLM; Subkey: "Software\Microsoft\Active Setup\Installed Components\counter-app-enrol"; ValueType: string; ValueName: "Version"; ValueData: "{#AppVersion}"; Check: HasEnrollmentCode

[Code]
var
  InstallFailed: Boolean;

{ The installer's exit code: 1 when the self-test or setup failed (a deployment tool sees it;
  the files stay so IT can run counter-app-debug.exe doctor, and the message box says why). }
function GetCustomSetupExitCode(): Integer;
begin
  if InstallFailed then
    Result := 1
  else
    Result := 0;
end;

function HasSetupParams(): Boolean;
begin
  Result := (ExpandConstant('{param:SERVER|}') <> '') and (ExpandConstant('{param:WINDOW|}') <> '');
end;

function HasEnrollmentCode(): Boolean;
begin
  Result := ExpandConstant('{param:CODE|}') <> '';
end;

{ Run a tool of the bundle hidden, its output in a file; False (and a message box with the exit
  code and the output file) when it could not start or exited non-zero. }
function RunChecked(const What, Params: String): Boolean;
var
  ResultCode: Integer;
  LogFile: String;
begin
  LogFile := ExpandConstant('{tmp}') + What + '.log';
  Result := Exec(ExpandConstant('{cmd}'), '/C ""' + ExpandConstant('{app}\counter-app-debug.exe') + '" ' + Params + ' > "' + LogFile + '" 2>&1"',
                 '', SW_HIDE, ewWaitUntilTerminated, ResultCode) and (ResultCode = 0);
  if not Result then
    MsgBox(What + ' failed (exit code ' + IntToStr(ResultCode) + '); see ' + LogFile + #13#10 +
           What + ' 失败（退出码 ' + IntToStr(ResultCode) + '），详见 ' + LogFile, mbCriticalError, MB_OK);
end;

procedure WriteEnrolScript();
var
  Lines: TArrayOfString;
begin
  SetArrayLength(Lines, 4);
  Lines[0] := '@echo off';
  Lines[1] := 'if not exist "%LOCALAPPDATA%\counter-app" mkdir "%LOCALAPPDATA%\counter-app"';
  Lines[2] := '"' + ExpandConstant('{app}\counter-app-debug.exe') + '" enroll --enrollment-code "' + ExpandConstant('{param:CODE}') + '" > "%LOCALAPPDATA%\counter-app\enroll.log" 2>&1';
  Lines[3] := 'if errorlevel 1 msg "%USERNAME%" "counter-app: enrolment failed / 登记失败, see %LOCALAPPDATA%\counter-app\enroll.log"';
  SaveStringsToFile(ExpandConstant('{app}\enrol-as-clerk.cmd'), Lines, False);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if CurStep = ssPostInstall then
  begin
    if not RunChecked('self-test', '--self-test') then
    begin
      InstallFailed := True;
      Exit;
    end;
    if HasSetupParams() then
      if not RunChecked('setup', 'setup --no-input --server-url "' + ExpandConstant('{param:SERVER}') +
                        '" --window ' + ExpandConstant('{param:WINDOW}') + ' ' + ExpandConstant('{param:SETUPARGS|}')) then
      begin
        InstallFailed := True;
        Exit;
      end;
    if HasEnrollmentCode() then
      WriteEnrolScript();
  end;
end;
