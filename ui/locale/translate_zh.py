"""Maintenance script: fills ui/locale/zh_CN and en catalogs from the template (run after extract).

The .po files are the source of truth once written; this script only adds missing entries from
its table, keeping translations a translator already edited. Then: pybabel compile.
    python ui/locale/translate_zh.py && pybabel compile -d ui/locale -D counter
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).parent

ZH = {
    # Sign-in after an IT password reset.
    "New password": "新密码",
    "New password again": "再次输入新密码",
    "Set password and sign in (Enter)": "设置新密码并登录（回车）",
    "Your password was reset by IT. Choose a new password (8 or more characters) and type it twice.": "信息科已重置您的密码。请设置新密码（至少 8 位）并输入两次。",
    "The new password needs at least 8 characters.": "新密码至少需要 8 位。",
    "The new password must differ from the one IT gave you.": "新密码不能与信息科给的临时密码相同。",
    "The two new passwords differ; type it again.": "两次输入的新密码不一致，请重新输入。",
    "Ask IT to enrol this PC again (counter-app setup with a new enrolment code).": "请联系信息科用新的登记码重新登记本机（counter-app setup）。",

    # The matter's promise on the ticket card (issue 15 item 1).
    "Same-day matter": "即办件",
    "Time limit {n} working days": "承诺时限 {n} 个工作日",
    "Instant approval": "秒批秒办",
    "Cross-province": "跨省通办",
    "On-time rate": "按时办结率",
    "On-the-spot rate": "现场办结率",
    # The capture panel (moved from zh/en pairs in ui/presenters/capture.py).
    " (use 'Import file')": "（可点“导入文件”）",
    "{n} page(s) captured.": "已采集 {n} 页。",
    "A {n}-page PDF is queued for upload.": "已生成 {n} 页 PDF，已加入上传队列。",
    "Marked '{status}'.": "已标记为“{status}”。",
    "'{name}' is uploaded and verified by the server; the local copy was deleted.": "“{name}”已上传，服务器校验一致，本机副本已删除。",
    "'{name}' not uploaded yet, retrying automatically: {reason}": "“{name}”上传未完成，将自动重试：{reason}",
    "The one-time notice was sent to the printer ({n} missing).": "一次性告知书已送打印（缺 {n} 项材料）。",
    "The notice is printed. Suspend the ticket (without materials) so the citizen can come back with them without queuing again?": "告知书已打印。是否将号票挂起（不持件挂起），申请人补齐材料后回来无需重新排队？",
    "{n} p.": "{n} 页",
    "{n} page(s)": "{n} 页",
    "No pages waiting in this item. Choose a source and press the blue button above, or import a file.": "本项尚无待上传的页面。选择来源后点上方蓝色按钮采集，或导入文件。",
    "Page {n}": "第 {n} 页",
    "Need": "要求",
    "Pages": "页数",
    "Upload": "上传",
    "◀ Earlier": "◀ 前移",
    "Later ▶": "后移 ▶",
    "Delete page": "删除此页",
    "Rescan page": "重扫此页",
    "Scanner": "扫描仪",
    "Hot folder": "热文件夹",
    "File": "文件",
    "Colour": "彩色",
    "Grey": "灰度",
    "Black/white": "黑白",
    "Flatbed": "平板",
    "Feeder (ADF)": "自动进纸",
    "E-licence": "电子证照",
    "Accept, to follow": "容缺受理",
    "Queued": "等待上传",
    "Uploading": "上传中",
    "Uploaded ✓": "已上传 ✓",
    "Upload failed": "上传失败",
    "Capturing…": "正在采集…",
    "Making the PDF…": "正在生成 PDF…",
    "Capture materials": "采集材料",
    "Import file…": "导入文件…",
    "Finish and upload": "完成并上传",
    "One-time notice": "一次性告知",
    "Close": "关闭",
    "Scan": "开始扫描",
    "Take from folder": "取热文件夹中的文件",
    "Choose files…": "选择文件…",
    "Choose scans": "选择扫描件",
    "Images or PDF": "图片或 PDF",
    "All files": "所有文件",
    "Suspend the ticket?": "挂起号票？",
    "Suspend (Enter)": "挂起（Enter）",
    "Not now (Esc)": "不挂起（Esc）",
    "Start the service and set the matter (F7, F8) before capturing.": "请先开始办理并选择事项（F7、F8），再采集材料。",
    "Capture / scan…": "采集 / 扫描材料…",
    "{category} · matter not chosen yet": "{category} · 尚未选择事项",
    "Call the selected ticket now (Enter)": "立即呼叫选中的号 (Enter)",
    "Finish the current citizen before calling another.": "请先办完当前群众，再呼叫其他号。",
    "Ticket {taken} was taken by another window; nobody else is waiting for this window.":
        "{taken} 已被其他窗口叫走；本窗口暂无其他等候的群众。",
    "Ticket {taken} was taken by another window; calling {number} instead.":
        "{taken} 已被其他窗口叫走，改为呼叫 {number}。",
    "A rejection needs a reason: the citizen is told why.": "不予受理必须填写理由：要告知群众原因。",
    "Accepted for processing": "受理",
    "Accepted, to follow": "容缺受理（后补）",
    "Appointment": "预约",
    "Avg handling": "平均办理时长",
    "Basically satisfied": "基本满意",
    "Call next": "叫号",
    "Calling": "叫号中",
    "Calling {number}": "正在呼叫 {number}",
    "Cancel (Esc)": "取消 (Esc)",
    "Caps Lock is on": "大写锁定已打开",
    "Category": "类别",
    "Category {label}": "类别 {label}",
    "Set matter": "更改事项",
    "Choose (Enter)": "选择 (Enter)",
    "Choose a reason.": "请选择暂停原因。",
    "Choose an outcome.": "请选择办理结果。",
    "Choose the matter": "选择事项",
    "Choose the matter (F8) to see its materials": "请先选择事项 (F8) 以显示材料清单",
    "Choose where to send the citizen.": "请选择转往的窗口或类别。",
    "Closed": "已关闭",
    "Complete": "办结",
    "Completed on the spot": "办结（当场办结）",
    "Counter desk sign-in": "窗口工作台登录",
    "Counter desk · window {no}": "窗口工作台 · {no} 号窗口",
    "Dissatisfied": "不满意",
    "Electronic licence": "电子证照",
    "Switch language": "English",
    "Enter your staff number and password.": "请输入工号和密码。",
    "Evaluate": "评价",
    "Finish the current citizen before resuming another.": "请先办完当前群众，再恢复挂起的号。",
    "Finish the service": "结束办理",
    "Green channel": "绿色通道",
    "Handed to another department": "转办",
    "Keep its priority": "保持原优先级",
    "Lock": "锁屏",
    "Marked as no-show": "已过号",
    "Material": "材料",
    "Materials": "材料清单",
    "Matter not chosen yet": "尚未选择事项",
    "Matter set": "事项已更改",
    "May follow later": "可容缺",
    "Missing": "缺少",
    "New citizen waiting: {number}": "有新群众等候：{number}",
    "No citizen at the window": "窗口前暂无群众",
    "No citizen at the window. Press F1 to call the next.": "暂无办理中的群众。按 F1 叫下一位。",
    "No connection to the hall server. Still working: the checklist on screen, the catalog search, the lock, and ratings (kept and sent later). Calling, transfer and completion wait until the connection is back.":
        "与大厅服务器的连接已断开。仍可使用：屏幕上的材料清单、事项查询、锁屏，评价会先保存、恢复后自动上传。叫号、转移和办结需等待连接恢复。",
    "No matter chosen: type to search first.": "未选择事项：请先输入查询。",
    "No-show": "过号",
    "No-shows": "过号数",
    "Nobody is waiting for this window.": "本窗口暂无等候群众。",
    "Normal": "普通",
    "Not applicable": "不适用",
    "Not checked": "未核对",
    "Note": "备注",
    "Note (optional)": "备注（可选）",
    "OK (Enter)": "确定 (Enter)",
    "Optional": "可选",
    "Outcome": "办理结果",
    "Pad: not connected": "评价器：未连接",
    "Password": "密码",
    "Pause": "暂停",
    "Pause the window": "暂停窗口",
    "Paused": "已暂停",
    "Priority": "优先级",
    "REQUIRED, MISSING": "必交，缺少！",
    "REQUIRED, not checked": "必交，未核对",
    "Ratings by level": "评价分布",
    "Ready": "空闲",
    "Reason (needed when rejected)": "理由（不予受理时必填）",
    "Reason (shown to citizens on the pad)": "原因（评价器上向群众显示）",
    "Recall": "重呼",
    "Recalled": "已重呼",
    "Recalled {n}{limit} times": "已重呼 {n}{limit} 次",
    "Received": "已收取",
    "Rejected (reason needed)": "不予受理（需填理由）",
    "Required": "必交",
    "Requirement": "要求",
    "Resume": "恢复",
    "Resume selected suspended ticket (Enter)": "恢复选中的挂起号 (Enter)",
    "Resumed": "已恢复办理",
    "Satisfaction": "满意率",
    "Satisfied": "满意",
    "Scanner: not configured": "高拍仪：未配置",
    "Sent to this window": "指定本窗口",
    "Served": "已办理",
    "Server: OFFLINE": "服务器：已断开",
    "Server: checking…": "服务器：检测中…",
    "Server: connected": "服务器：已连接",
    "Server: connected (polling)": "服务器：已连接（轮询）",
    "Server: not reachable": "服务器：无法连接",
    "Server: reconnecting…": "服务器：重新连接中…",
    "Service finished": "办理已结束",
    "Service started": "开始办理",
    "Serving": "办理中",
    "Sign in (Enter)": "登录 (Enter)",
    "Something went wrong. The details are in the log: {where}": "出现意外错误，详细信息已写入日志：{where}",
    "Staff number": "工号",
    "Start service": "开始办理",
    "Status": "状态",
    "Suspend": "挂起",
    "Suspended (fetching materials)": "已挂起（回去取材料）",
    "Suspended: the citizen can come back to any window of this category": "已挂起：群众取回材料后可到同类窗口直接办理",
    "The desk is locked": "工作台已锁定",
    "Ticket": "号码",
    "Ticket {number} was taken by another window; calling the next one.": "{number} 已被其他窗口叫走，正在呼叫下一位。",
    "Tickets per hour": "每小时取号数",
    "To a window or a category": "转往窗口或类别",
    "Today at this window": "本窗口今日数据",
    "Told what to add": "补正告知",
    "Transfer": "转移",
    "Transfer the citizen": "转移群众",
    "Transferred": "已转移",
    "Type pinyin initials, a name or a code": "输入拼音首字母、名称或编码",
    "Unexpected error: {error}": "意外错误：{error}",
    "Unlock (Enter)": "解锁 (Enter)",
    "Unsent ratings: {n}": "待上传评价：{n}",
    "Very dissatisfied": "非常不满意",
    "Very satisfied": "非常满意",
    "Waited": "已等候",
    "Waited {time}": "已等候 {time}",
    "Waiting list": "等候队列",
    "Window open again": "窗口已恢复服务",
    "Window paused": "窗口已暂停",
    "Window {label}": "窗口 {label}",
    "Window {no}": "{no} 号窗口",
    "Window {no} · {name} ({staff_no})": "{no} 号窗口 · {name}（工号 {staff_no}）",
    "Wrong password.": "密码错误。",
    "e-licence available": "可调用电子证照",
    "failed: {n}": "发送失败：{n}",
    "{n} matters found": "找到 {n} 个事项",
    "{waiting} waiting, {suspended} suspended": "等候 {waiting} 人，挂起 {suspended} 人",
    # The pad dialog (Ctrl+P) without a password, and the signed satisfaction rate (issue 10).
    "Evaluator pad": "评价器",
    "Refresh (Enter)": "刷新 (Enter)",
    "To pair or replace the pad, ask a supervisor or IT.": "如需配对或更换评价器，请联系值班主任或信息管理员。",
    "They start the pairing on their own device at {url} (never on this PC); the pad shows a fingerprint that they type there to confirm.": "他们在自己的设备上打开 {url} 开始配对（不在本机操作）；评价器会显示一串指纹，由他们在该页面输入确认。",
    "No pad is paired at this window.": "本窗口尚未配对评价器。",
    "Pad {id} paired by {who} on {when}.": "评价器 {id} 由 {who} 于 {when} 配对。",
    "Last seen by the hall server: {t}": "大厅服务器最近一次收到其请求：{t}",
    "not yet": "尚无",
    "signed: {p}": "签名评价：{p}",

    # Issue 16 (the desk: a clerk's whole day).
    "{number}: {n} required material(s) missing or unchecked. Give the correction notice, or a reason to go on anyway.": "{number}：{n} 项必交材料缺少或未核对。请出具补正告知，或填写继续办理的理由。",
    "{n} required material(s) missing or not checked: {names}": "{n} 项必交材料缺少或未核对：{names}",
    "Correction notice instead": "改为补正告知",
    "Print the one-time notice…": "打印一次性告知书…",
    "Or the reason to complete/accept anyway (logged):": "或填写仍要办结/受理的理由（将记录在案）：",
    "Required materials are missing: choose the correction notice, or give the reason to go on anyway.": "必交材料未齐：请改为补正告知，或填写仍要办理的理由。",
    "Handling {time}": "已办理 {time}",
    "Window paused: {reason}": "窗口暂停服务：{reason}",
    "Paused for {time} · press F6 to resume": "已暂停 {time} · 按 F6 恢复",
    "{number} marked as no-show": "{number} 已过号",
    "{number}: too early for no-show. Recall {recalls} more time(s), or wait {seconds} s more.": "{number}：还不能过号。请再重呼 {recalls} 次，或再等 {seconds} 秒。",
    "Suspend the ticket": "挂起号票",
    "What is the citizen fetching? (needed)": "群众回去取什么材料？（必填）",
    "Say why the ticket is suspended (e.g. fetching the ID card).": "请填写挂起原因（例如：回去取身份证）。",
    "{number} recalled": "{number} 已重呼",
    "{number}: service started": "{number} 开始办理",
    "{number} suspended: the citizen can come back to any window of this category": "{number} 已挂起：群众取回材料后可到同类窗口直接办理",
    "{number} transferred to {target}": "{number} 已转移至 {target}",
    "{number}: service finished": "{number} 办结完成",
    "{number}: matter set": "{number} 事项已设置",
    "{number}: {text}": "{number}：{text}",
    "The rating pad is not connected: no rating is asked now. The citizen can rate later with the code on the ticket slip.": "评价器未连接，现在不会请群众评价；群众可稍后凭号票上的评价码评价。",
}
EN_OVERRIDES = {"Switch language": "中文"}


def fill(locale: str, table: dict[str, str], identity: bool) -> list[str]:
    template = read_po((HERE / "counter.pot").open("rb"))
    path = HERE / locale / "LC_MESSAGES" / "counter.po"
    old: Catalog | None = read_po(path.open("rb"), locale=locale) if path.exists() else None
    cat = Catalog(locale=locale, domain="counter", project="counter-app", fuzzy=False)
    missing = []
    for msg in template:
        if not msg.id:
            continue
        prev = old.get(msg.id) if old is not None else None
        # The table holds singular messages only (a plural's id is a tuple).
        text = ((prev.string if prev is not None and prev.string else None)
                or (table.get(msg.id) if isinstance(msg.id, str) else None))
        if text is None and identity:
            text = msg.id
        if text is None:
            missing.append(str(msg.id))
            text = ""
        cat.add(msg.id, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, cat, width=100, omit_header=False)
    return missing


if __name__ == "__main__":
    print("zh_CN missing:", fill("zh_CN", ZH, identity=False))
    print("en missing:", fill("en", EN_OVERRIDES, identity=True))
