/* The evaluator pad page. Plain JS, no build step.
 *
 * Served by the HALL SERVER (hall_server/pad_site.py), never by the window PC: the pad's key,
 * its pairing and its ratings never pass through the desk. Pairing: the pad registers its key
 * with the server and shows the key's fingerprint; a supervisor types that fingerprint on their
 * own device, and only then is the key bound. The page may be plain HTTP on a LAN address, not
 * a secure context, so no crypto.subtle. The pad's Ed25519 key pair is made and used with the vendored tweetnacl
 * (pure JS, its own SHA-512; crypto.getRandomValues works in insecure contexts too) and kept in
 * localStorage with the pad id and the rating counter. The counter is saved BEFORE a rating is
 * signed and sent, so a crash never reuses one. A signed rating waiting for its answer is kept
 * too and re-sent unchanged after a reconnect (same id, same counter, same signature).
 * The signed bytes: JSON.stringify of an object whose keys are inserted in sorted order
 * (docs/hall-api.md "Evaluator pads"): the server builds the same bytes with sorted keys.
 */
(function () {
  "use strict";

  var STORE = "hallpad.v1";
  var PREFS = "hallpad.prefs";
  var LEVELS = [
    ["very_satisfied", "非常满意", "Very satisfied", "M27 58 Q50 88 73 58"],
    ["satisfied", "满意", "Satisfied", "M31 62 Q50 78 69 62"],
    ["basic", "基本满意", "Basically satisfied", "M31 66 L69 66"],
    ["dissatisfied", "不满意", "Dissatisfied", "M31 72 Q50 58 69 72"],
    ["very_dissatisfied", "非常不满意", "Very dissatisfied", "M27 76 Q50 48 73 76"]
  ];
  var BAD = { dissatisfied: true, very_dissatisfied: true };
  var T = {
    zh: {
      speak: "朗读", contrast: "大字高对比", on: "开", off: "关", prev: "上一页", next: "更多原因",
      page: "第 {p} / {n} 页", chosen: "您的评价：", rate_now: "现在评价", need_time: "还需要时间吗？",
      yes_more: "需要", said_level: "您选择了：{l}。", said_on: "已选：{r}", said_off: "已取消：{r}",
      seconds: "{s} 秒", unpaired_title: "评价器未配对",
      unpaired_help: "请值班主任在自己的设备上开始配对，再用本机扫描配对二维码，或在下方输入 6 位配对码。",
      fp_title: "请值班主任核对此指纹", fp_help: "在值班主任自己的设备上输入下面的指纹，确认后即完成配对。",
      pair_rejected: "配对未完成（指纹不符、已拒绝或已过期），请重新配对。",
      code_label: "配对码", code_submit: "配对", window_label: "窗口号", idle_title: "为您服务的工作人员",
      served_by: "为您服务的是", staff_no: "工号", idle_hint: "办理完成后，请在此为我们的服务评价。",
      rating_title: "请您为本次服务评价", reasons_title: "请选择不满意的原因（至少一项）",
      comment_label: "其他意见（可不填）", back: "返回", submit: "提交评价",
      thanks_title: "感谢您的评价！", thanks_text: "您的评价已提交。", paused_title: "暂停服务",
      not_rated_title: "您还可以稍后评价", qr_alt: "稍后评价二维码", sending: "正在提交…",
      later: "请用手机扫描二维码，在 {d} 个工作日内评价。", later_nodays: "请用手机扫描二维码稍后评价。",
      offline: "连接中断，正在重连…", paired: "配对成功", pair_failed: "配对失败：",
      need_reason: "请至少选择一项原因，或填写意见。", refused: "评价未被接受：",
      matter: "办理事项：", window: "{n} 号窗口", say_rating: "请您为本次服务评价：非常满意，满意，基本满意，不满意，非常不满意。",
      lang_other: "English", lang_other_code: "en"
    },
    en: {
      speak: "Read aloud", contrast: "Large text", on: "On", off: "Off", prev: "Previous", next: "More reasons",
      page: "Page {p} of {n}", chosen: "Your rating: ", rate_now: "Rate now", need_time: "Do you need more time?",
      yes_more: "Yes", said_level: "You chose: {l}.", said_on: "Chosen: {r}", said_off: "Removed: {r}",
      seconds: "{s} s", unpaired_title: "This pad is not paired",
      unpaired_help: "Supervisor: start a pairing on your own device, then scan its QR code with this pad, or type the 6-digit code below.",
      fp_title: "Supervisor: check this fingerprint", fp_help: "Type the fingerprint below on your own device; the pad is paired once you confirm.",
      pair_rejected: "Pairing not completed (fingerprint mismatch, rejected or expired). Please pair again.",
      code_label: "Pairing code", code_submit: "Pair", window_label: "Window no.", idle_title: "Who is serving you",
      served_by: "You are served by", staff_no: "Staff no.", idle_hint: "When we are done, please rate our service here.",
      rating_title: "Please rate our service", reasons_title: "Why were you not satisfied? (choose at least one)",
      comment_label: "Anything else (optional)", back: "Back", submit: "Send rating",
      thanks_title: "Thank you!", thanks_text: "Your rating has been sent.", paused_title: "Service paused",
      not_rated_title: "You can rate later", qr_alt: "QR code to rate later", sending: "Sending…",
      later: "Scan the QR code with your phone to rate within {d} working days.", later_nodays: "Scan the QR code with your phone to rate later.",
      offline: "Connection lost, reconnecting…", paired: "Paired", pair_failed: "Pairing failed: ",
      need_reason: "Please choose at least one reason, or write a comment.", refused: "The rating was not accepted: ",
      matter: "Matter: ", window: "Window {n}", say_rating: "Please rate our service: very satisfied, satisfied, basically satisfied, dissatisfied, very dissatisfied.",
      lang_other: "中文", lang_other_code: "zh-CN"
    }
  };

  var $ = function (id) { return document.getElementById(id); };
  var st = load(STORE) || {};
  var prefs = load(PREFS) || {};
  var lang = "zh";
  var seq = 0;
  var server = null;        // the last state from the desk
  var local = null;         // a local screen over the desk's: "reasons" | "sending" | "thanks"
  var chosen = null;        // level picked that needs reasons
  var picked = {};          // reason codes picked
  var answeredCase = null;  // case id answered from this pad (until the desk moves on)
  var lastCase = null;
  var online = false;
  var rateLaterDays = null;
  // The hall's settings (GET /pad/api/state "prefs"); read-aloud on, high contrast off unless
  // the hall says otherwise. The citizen's own switches last until the next citizen.
  var hallPrefs = { speak: true, high_contrast: false, warn_s: 20, timeout_s: 90 };
  var speakOn = hallPrefs.speak;
  var hcOn = !!prefs.hc;
  var deadline = null;      // local ms when the open rating ends (2 s before the server's)
  var lastTouch = 0;        // when the server was last told of a touch
  var draft = null;         // {case_id, level, picked, comment}: a started complaint, kept
  var page = 0;             // the page of reasons shown
  var GRACE_MS = 2000;

  function load(k) { try { return JSON.parse(window.localStorage.getItem(k) || "null"); } catch (e) { return null; } }
  function save() { window.localStorage.setItem(STORE, JSON.stringify(st)); }
  function savePrefs() { window.localStorage.setItem(PREFS, JSON.stringify(prefs)); }
  function t(key) { return (T[lang] && T[lang][key]) || T.zh[key] || key; }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function b64u(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unb64u(text) {
    var s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    var out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { out[i] = s.charCodeAt(i); }
    return out;
  }
  function hex(bytes) {
    var h = "";
    for (var i = 0; i < bytes.length; i++) { h += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return h;
  }
  function uuid4() {
    var b = nacl.randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = hex(b);
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function ensureKey() {
    if (st.sk && st.pk && st.pad_id) { return; }
    var kp = nacl.sign.keyPair();
    st = { pad_id: "pad_" + hex(nacl.randomBytes(12)), sk: b64u(kp.secretKey), pk: b64u(kp.publicKey),
           counter: 0, paired: false, pending: null };
    save();
  }

  function api(method, path, body, timeoutMs) {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, timeoutMs || 15000);
    var init = { method: method, signal: ctl.signal, cache: "no-store", headers: {} };
    if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, json: j }; });
    }).finally(function () { clearTimeout(timer); });
  }
  function errText(j) {
    var e = (j && j.error) || {};
    return (lang === "en" ? e.message_en : e.message_zh) || e.code || "?";
  }

  // ---- pairing --------------------------------------------------------------------------
  // The fingerprint the supervisor types: SHA-512 of "hall-pad-key-v1\n<public key>", 16 hex
  // digits in groups of 4 (hall_server/rating_check.fingerprint). Computed HERE from the pad's
  // own key, so a key swapped on the way shows a different one on the supervisor's device.
  function fingerprint() {
    var h = hex(nacl.hash(new TextEncoder().encode("hall-pad-key-v1\n" + st.pk))).slice(0, 16).toUpperCase();
    return h.slice(0, 4) + "-" + h.slice(4, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16);
  }

  function pair(extra) {
    if (!st.paired) {  // a new pairing: a new key (an old key never comes back)
      st = {}; ensureKey();
    }
    var body = { pad_id: st.pad_id, public_key: st.pk, alg: "Ed25519" };
    for (var k in extra) { body[k] = extra[k]; }
    $("pair-msg").textContent = "";
    return api("POST", "/pad/api/pair", body).then(function (r) {
      if (r.status === 200) {
        st.pairing = r.json.pairing_id; st.paired = false; save();
        render();
        waitConfirmed();
      } else {
        $("pair-msg").textContent = t("pair_failed") + errText(r.json);
        show("unpaired");
      }
    }).catch(function () { $("pair-msg").textContent = t("pair_failed") + t("offline"); });
  }

  async function waitConfirmed() {
    while (st.pairing && !st.paired) {
      try {
        var r = await api("GET", "/pad/api/pair-status?pairing_id=" + encodeURIComponent(st.pairing) + proof(), undefined, 15000);
        var s = r.json && r.json.status;
        if (r.status === 200 && s === "confirmed") {
          st.paired = true; st.pairing = null; st.counter = 0; save();
          setLink(t("paired"), false);
          render();
          return;
        }
        if (r.status !== 200 || s === "rejected" || s === "expired") {
          st.pairing = null; save();
          $("pair-msg").textContent = t("pair_rejected");
          render();
          return;
        }
      } catch (e) { /* offline: keep asking */ }
      await sleep(1500);
    }
  }

  // ---- signing and sending ----------------------------------------------------------------
  function signRating(req, level, reasons, comment) {
    st.counter = (st.counter || 0) + 1;
    save();  // before signing: a counter is never used twice
    var padTime = Date.now();
    var sorted = reasons.slice().sort();
    var msg = {  // keys inserted in sorted order; JSON.stringify keeps that order
      case_id: req.case_id, challenge: req.challenge, comment: comment, level: level,
      pad_counter: st.counter, pad_id: st.pad_id, pad_time: padTime, purpose: "hall-rating-v1",
      rating_id: uuid4(), reasons: sorted, window_no: req.window_no
    };
    var bytes = new TextEncoder().encode(JSON.stringify(msg));
    var sig = nacl.sign.detached(bytes, unb64u(st.sk));
    return {
      rating_id: msg.rating_id, case_id: req.case_id, window_no: req.window_no, level: level,
      reasons: sorted, comment: comment, challenge: req.challenge,
      rated_at: new Date(padTime).toISOString(), pad_id: st.pad_id, pad_counter: st.counter,
      signature: b64u(sig)
    };
  }

  function submit(level, reasons, comment) {
    var req = server && server.request;
    if (!req) { return; }
    st.pending = signRating(req, level, reasons, comment);
    save();
    local = "sending";
    render();
    sendPending();
  }

  var sending = false;
  function sendPending() {
    if (sending || !st.pending) { return; }
    sending = true;
    var body = st.pending;
    api("POST", "/pad/api/rating", body).then(function (r) {
      sending = false;
      if (r.status === 200) {
        answeredCase = body.case_id;
        if (draft && draft.case_id === body.case_id) { draft = null; }
        st.pending = null; save();
        local = "thanks"; render();
        speak(t("thanks_title"));
      } else if (r.status >= 400 && r.status < 500) {
        st.pending = null; save();
        local = null; render();
        $("reasons-msg").textContent = t("refused") + errText(r.json);
        setLink(t("refused") + errText(r.json), true);
      } else {
        setTimeout(sendPending, 2000);  // the desk could not save: try again, same message
      }
    }).catch(function () { sending = false; setTimeout(sendPending, 2000); });
  }

  // ---- screens --------------------------------------------------------------------------
  function show(name) {
    var all = document.querySelectorAll(".screen");
    for (var i = 0; i < all.length; i++) { all[i].hidden = all[i].id !== "scr-" + name; }
    document.body.setAttribute("data-screen", name);
  }

  function setLink(text, bad) {
    var el = $("link");
    el.textContent = text;
    el.className = "bar-status" + (bad ? " bad" : "");
  }

  function applyTexts() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    var nodes = document.querySelectorAll("[data-t]");
    for (var i = 0; i < nodes.length; i++) { nodes[i].textContent = t(nodes[i].getAttribute("data-t")); }
    var alts = document.querySelectorAll("[data-t-alt]");
    for (var j = 0; j < alts.length; j++) { alts[j].alt = t(alts[j].getAttribute("data-t-alt")); }
    var lb = $("btn-lang");
    lb.textContent = t("lang_other");
    lb.lang = t("lang_other_code");
    document.title = lang === "zh" ? "服务评价" : "Service rating";
    if (online) { setLink("", false); }
    showToggles();
  }

  // ---- the citizen's switches: read aloud, high contrast ---------------------------------
  function showToggles() {
    document.body.classList.toggle("hc", hcOn);
    var pairs = [["btn-speak", speakOn, "speak"], ["btn-contrast", hcOn, "contrast"]];
    pairs.forEach(function (p) {
      var b = $(p[0]);
      b.setAttribute("aria-pressed", p[1] ? "true" : "false");
      var st_ = b.querySelector(".tool-state");
      if (st_) { st_.textContent = t(p[1] ? "on" : "off"); }
    });
  }
  function resetForCitizen() {  // the next citizen starts with the hall's settings
    speakOn = !!hallPrefs.speak;
    hcOn = !!hallPrefs.high_contrast;
    showToggles();
  }

  function face(path) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 100 100");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var parts = [["circle", { cx: 50, cy: 50, r: 44, fill: "none", stroke: "currentColor", "stroke-width": 6 }],
                 ["circle", { cx: 35, cy: 40, r: 6, fill: "currentColor" }],
                 ["circle", { cx: 65, cy: 40, r: 6, fill: "currentColor" }],
                 ["path", { d: path, fill: "none", stroke: "currentColor", "stroke-width": 6, "stroke-linecap": "round" }]];
    parts.forEach(function (p) {
      var el = document.createElementNS(ns, p[0]);
      for (var k in p[1]) { el.setAttribute(k, p[1][k]); }
      svg.appendChild(el);
    });
    return svg;
  }

  function buildLevels() {
    var box = $("levels");
    box.textContent = "";
    LEVELS.forEach(function (lv) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "level";
      b.setAttribute("data-level", lv[0]);
      b.appendChild(face(lv[3]));
      var s = document.createElement("span");
      s.textContent = lang === "zh" ? lv[1] : lv[2];
      b.appendChild(s);
      b.addEventListener("click", function () { pickLevel(lv[0]); });
      box.appendChild(b);
    });
  }

  // All reasons on one screen: as many rows as the free height holds (big ▲▼ page buttons
  // for the rest), never a scrolled list with reasons out of sight.
  function perPage(total, cols) {
    var area = $("reasons-area");
    var rowH = hcOn ? 112 : 88, gap = 12;
    var h = area.clientHeight;
    if (!h) { return total; }
    var rows = Math.max(1, Math.floor((h + gap) / (rowH + gap)));
    if (rows * cols >= total) { return total; }
    var pagerRows = cols === 1 ? 1 : 0;  // portrait: the pager takes a row under the list
    return Math.max(1, (rows - pagerRows) * cols);
  }

  // The page size fits EVERY page (texts differ in length), so paging never skips a reason;
  // in landscape 3 or 2 columns, whichever shows more at once (long English texts: 2).
  function fitReasons(all, cols) {
    var box = $("reasons");
    box.style.gridTemplateColumns = "repeat(" + cols + ", 1fr)";
    $("pager").hidden = true;
    var n = perPage(all.length, cols);
    if (n < all.length) { $("pager").hidden = false; n = perPage(all.length, cols); }
    for (;;) {
      var fits = true;
      for (page = 0; page * n < all.length; page++) {
        fillReasons(all, n);
        if (box.scrollHeight > box.clientHeight + 1) { fits = false; break; }
      }
      if (fits || n <= 1) { return n; }
      n = Math.max(1, n - cols);
      $("pager").hidden = false;
    }
  }

  function buildReasons() {
    var all = (server && server.request && server.request.reasons) || [];
    var keep = page;
    var choices = window.innerWidth > 900 ? [3, 2] : [1];
    var best = null;
    choices.forEach(function (cols) {
      var n = fitReasons(all, cols);
      if (best === null || n > best[1]) { best = [cols, n]; }
    });
    if (best[0] !== choices[choices.length - 1]) { fitReasons(all, best[0]); }
    page = keep;
    fillReasons(all, best[1]);
  }

  function fillReasons(all, n) {
    var box = $("reasons");
    box.textContent = "";
    var pages = Math.max(1, Math.ceil(all.length / n));
    if (page >= pages) { page = pages - 1; }
    var list = all.slice(page * n, page * n + n);
    $("page-no").textContent = t("page").replace("{p}", page + 1).replace("{n}", pages);
    $("btn-prev").disabled = page === 0;
    $("btn-next").disabled = page >= pages - 1;
    list.forEach(function (r) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "reason";
      b.setAttribute("data-code", r.code);
      b.setAttribute("aria-pressed", picked[r.code] ? "true" : "false");
      b.textContent = lang === "zh" ? r.text_zh : (r.text_en || r.text_zh);
      b.addEventListener("click", function () {
        picked[r.code] = !picked[r.code];
        b.setAttribute("aria-pressed", picked[r.code] ? "true" : "false");
        $("reasons-msg").textContent = "";
        keepDraft();
        speak(t(picked[r.code] ? "said_on" : "said_off").replace("{r}", b.textContent));
      });
      box.appendChild(b);
    });
  }

  function levelName(level) {
    for (var i = 0; i < LEVELS.length; i++) {
      if (LEVELS[i][0] === level) { return lang === "zh" ? LEVELS[i][1] : LEVELS[i][2]; }
    }
    return level;
  }

  function pickLevel(level) {
    var said = t("said_level").replace("{l}", levelName(level));
    if (BAD[level]) {
      var req = server && server.request;
      var keep = draft && req && draft.case_id === req.case_id && draft.level === level;
      chosen = level; picked = keep ? draft.picked : {};
      $("comment").value = keep ? draft.comment : "";
      $("reasons-msg").textContent = "";
      local = "reasons"; page = 0;
      keepDraft();
      render();
      speak(said + t("reasons_title"));
      return;
    }
    speak(said);
    submit(level, [], "");
  }

  function keepDraft() {  // a started complaint survives a timeout, 返回 and the QR screen
    var req = server && server.request;
    if (!req || !chosen) { return; }
    draft = { case_id: req.case_id, level: chosen, picked: picked, comment: $("comment").value };
  }

  function showChosen() {
    var el = $("chosen");
    el.textContent = "";
    var lv = null;
    LEVELS.forEach(function (x) { if (x[0] === chosen) { lv = x; } });
    if (!lv) { return; }
    el.setAttribute("data-level", lv[0]);
    el.appendChild(face(lv[3]));
    var s = document.createElement("span");
    s.textContent = t("chosen") + levelName(lv[0]);
    el.appendChild(s);
  }

  function submitReasons() {
    var codes = Object.keys(picked).filter(function (k) { return picked[k]; });
    var comment = $("comment").value.trim();
    if (!codes.length && !comment) {
      $("reasons-msg").textContent = t("need_reason");
      speak(t("need_reason"));
      return;
    }
    submit(chosen, codes, comment);
  }

  function fillCard(card) {
    if (!card) { return; }
    var name = lang === "zh" ? card.name_zh : (card.name_en || card.name_zh);
    var win = lang === "zh" ? (card.window_name_zh || t("window").replace("{n}", card.window_no))
                            : (card.window_name_en || t("window").replace("{n}", card.window_no));
    $("card-name").textContent = name;
    $("card-staff").textContent = card.staff_no;
    $("card-window").textContent = win;
    var img = $("card-photo");
    if (card.has_photo) {
      if (img.getAttribute("data-staff") !== card.staff_no) {
        img.setAttribute("data-staff", card.staff_no);
        img.src = "/pad/api/photo?x=1" + proof();
      }
      img.alt = name;
      img.hidden = false;
    } else {
      img.hidden = true;
    }
    var mini = $("mini-photo");
    if (card.has_photo && img.getAttribute("src")) {
      if (mini.getAttribute("src") !== img.getAttribute("src")) { mini.src = img.getAttribute("src"); }
      mini.alt = name;
      mini.hidden = false;
    } else {
      mini.hidden = true;
    }
    $("mini-card").textContent = name + " · " + t("staff_no") + " " + card.staff_no + " · " + win;
  }

  function render() {
    applyTexts();
    if (!st.paired && st.pairing) {
      $("fp").textContent = fingerprint();
      show("pairing"); return;
    }
    if (!st.paired) { show("unpaired"); return; }
    if (!server) { show("idle"); return; }
    fillCard(server.card);
    var scr = server.screen;
    var req = server.request;
    if (scr === "rating" && req && req.case_id === answeredCase) { local = local || "thanks"; }
    if (scr !== "rating" && local !== "thanks" && local !== "sending") { local = null; }
    if (local === "thanks" && scr !== "rating" && scr !== "thanks") { local = null; }
    if (scr === "rating" && !local && draft && req && draft.case_id === req.case_id && reopened) {
      reopened = false;  // "现在评价": back to the complaint as it was left
      chosen = draft.level; picked = draft.picked; $("comment").value = draft.comment; local = "reasons";
    }
    if (local) {
      show(local);
      if (local === "reasons") { showChosen(); buildReasons(); }
      countdown();
      return;
    }
    if (scr === "rating") {
      buildLevels();
      var m = lang === "zh" ? req.matter_name_zh : (req.matter_name_en || req.matter_name_zh);
      $("rating-matter").textContent = m ? t("matter") + m : "";
      show("rating");
      countdown();
    } else if (scr === "paused") {
      var p = server.paused || {};
      $("paused-text").textContent = (lang === "zh" ? p.zh : (p.en || p.zh)) || "";
      show("paused");
    } else if (scr === "not_rated") {
      if (server.rate_later_days) { rateLaterDays = server.rate_later_days; }
      fetchLater(server.case_id);
      $("later-text").textContent = rateLaterDays ? t("later").replace("{d}", rateLaterDays) : t("later_nodays");
      show("not_rated");
      countdown();
    } else if (scr === "thanks") {
      show("thanks");
    } else {
      show("idle");
    }
    countdown();
  }

  // ---- the rating period: restarted by every touch, a large countdown before it ends --------
  function ratingOpen() {
    var scr = document.body.getAttribute("data-screen");
    return !!(server && server.screen === "rating" && server.request && (scr === "rating" || scr === "reasons"));
  }

  function setDeadline(openUntil, serverMs) {
    if (openUntil && serverMs) { deadline = Date.now() + (openUntil - serverMs) - GRACE_MS; }
  }

  // The page's deadline comes only from the server's answers (never later than the server's):
  // a touch within 2 s of the last one sent is sent when those 2 s are over.
  var touchTimer = null;
  function touched() {
    if (!ratingOpen()) { return; }
    var wait = 2000 - (Date.now() - lastTouch);
    if (wait > 0) {
      if (touchTimer === null) { touchTimer = setTimeout(function () { touchTimer = null; touched(); }, wait); }
      return;
    }
    lastTouch = Date.now();
    var body = proofParts();
    body.case_id = server.request.case_id;
    api("POST", "/pad/api/touch", body).then(function (r) {
      if (r.status === 200) { setDeadline(r.json.open_until_ms, r.json.server_ms); countdown(); }
    }).catch(function () { lastTouch = 0; });
  }

  function countdown() {
    var box = $("countdown");
    if (!ratingOpen() || deadline === null) { box.hidden = true; return; }
    var left = deadline - Date.now();
    var warn = Math.min(hallPrefs.warn_s, Math.floor(hallPrefs.timeout_s / 2)) * 1000;
    if (left <= 0) {
      box.hidden = true;
      deadline = null;
      keepDraft();
      // A complaint that can be sent is sent rather than lost.
      if (document.body.getAttribute("data-screen") === "reasons") {
        var codes = Object.keys(picked).filter(function (k) { return picked[k]; });
        if (codes.length || $("comment").value.trim()) { submitReasons(); }
      }
      return;
    }
    var secs = Math.ceil(left / 1000);
    if (left <= warn) {
      if (box.hidden) { box.hidden = false; speak(t("need_time")); }
      $("cd-num").textContent = String(secs);
    } else {
      box.hidden = true;
    }
  }

  // ---- speech -------------------------------------------------------------------------
  function speak(text) {
    if (!speakOn || !window.speechSynthesis || !window.SpeechSynthesisUtterance) { return; }
    try {
      window.speechSynthesis.cancel();
      var u = new SpeechSynthesisUtterance(text);
      u.lang = lang === "zh" ? "zh-CN" : "en-US";
      u.rate = 0.9;
      window.speechSynthesis.speak(u);
    } catch (e) { /* speech is a help, never a requirement */ }
  }

  // ---- the link to the desk -------------------------------------------------------------
  function onState(s) {
    if (s.prefs) { hallPrefs = s.prefs; }
    if (s.screen === "rating" && s.request) { setDeadline(s.request.open_until_ms, s.server_ms); }
    var newCase = s.screen === "rating" && s.request ? s.request.case_id : null;
    if (newCase !== null && newCase !== lastCase) {
      lastCase = newCase;
      lang = prefs.lang || "zh";  // each citizen starts in the default language
      local = null; picked = {}; chosen = null; draft = null; reopened = false; laterCase = null;
      resetForCitizen();
      if (newCase !== answeredCase) { answeredCase = null; }
      server = s;
      render();
      speak(t("say_rating"));
      return;
    }
    if (s.rate_later_days) { rateLaterDays = s.rate_later_days; }
    server = s;
    render();
  }

  // Each request to the server carries a fresh signature by the pad's key
  // ("hall-pad-heartbeat-v1\n<pad_id>\n<ms>"): the server shows the window's screen, the QR
  // and the clerk's photo only to the paired pad.
  var lastProofT = 0;
  function proofParts() {
    var t = Math.max(Date.now(), lastProofT + 1);  // never the same proof twice
    lastProofT = t;
    var msg = new TextEncoder().encode("hall-pad-heartbeat-v1\n" + st.pad_id + "\n" + t);
    return { pad_id: st.pad_id, t: t, sig: b64u(nacl.sign.detached(msg, unb64u(st.sk))) };
  }
  function proof() {
    var p = proofParts();
    return "&pad_id=" + encodeURIComponent(p.pad_id) + "&t=" + p.t + "&sig=" + p.sig;
  }

  var laterCase = null;
  var reopened = false;
  function rateNow() {  // "现在评价" on the QR screen: the same case opens again
    if (!server || server.screen !== "not_rated") { return; }
    var body = proofParts();
    body.case_id = server.case_id;
    reopened = true;
    api("POST", "/pad/api/reopen", body).then(function (r) {
      if (r.status === 200) { laterCase = null; setDeadline(r.json.open_until_ms, r.json.server_ms); }
      else { reopened = false; }
    }).catch(function () { reopened = false; });
  }
  function fetchLater(caseId) {
    if (laterCase === caseId) { return; }
    laterCase = caseId;
    $("later-qr").removeAttribute("src");
    var body = proofParts();
    body.case_id = caseId;
    api("POST", "/pad/api/rate-later", body).then(function (r) {
      if (r.status === 200 && laterCase === caseId) {
        $("later-qr").src = r.json.qr;
        rateLaterDays = r.json.rate_later_days || rateLaterDays;
        render();
      }
    }).catch(function () { laterCase = null; });
  }

  async function loop() {
    var backoff = 1000;
    for (;;) {
      try {
        if (!st.paired) { await sleep(1000); continue; }
        var r = await api("GET", "/pad/api/state?since=" + seq + proof(), undefined, 40000);
        if (r.status === 403) {  // unpaired by IT, or another pad paired here
          st.paired = false; save(); seq = 0; server = null; render();
          continue;
        }
        if (r.status !== 200) { throw new Error("state " + r.status); }
        if (!online) { online = true; setLink("", false); }
        backoff = 1000;
        seq = r.json.seq;
        onState(r.json);
        if (st.pending) { sendPending(); }
      } catch (e) {
        online = false;
        setLink(t("offline"), true);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }

  // ---- start ------------------------------------------------------------------------------
  function pairFromAddress() {
    var m = /^#pair=([A-Za-z0-9_-]{1,64})$/.exec(window.location.hash);
    if (m) {
      history.replaceState(null, "", window.location.pathname);  // the token is single use
      pair({ token: m[1] });
    }
  }

  function start() {
    ensureKey();
    showToggles();
    $("btn-lang").addEventListener("click", function () {
      lang = lang === "zh" ? "en" : "zh";
      render();
    });
    $("btn-contrast").addEventListener("click", function () {
      hcOn = !hcOn;
      prefs.hc = hcOn; savePrefs();  // survives a reload of the page, not the next citizen
      showToggles();
      if (local === "reasons") { buildReasons(); }
    });
    if (window.speechSynthesis) {
      var sb = $("btn-speak");
      sb.hidden = false;
      sb.addEventListener("click", function () {
        speakOn = !speakOn;
        showToggles();
        if (speakOn) { speak(server && server.screen === "rating" ? t("say_rating") : t("idle_hint")); }
        else { try { window.speechSynthesis.cancel(); } catch (e) { /* nothing to stop */ } }
      });
    }
    $("btn-back").addEventListener("click", function () { keepDraft(); local = null; render(); });
    $("btn-prev").addEventListener("click", function () { page = Math.max(0, page - 1); buildReasons(); });
    $("btn-next").addEventListener("click", function () { page += 1; buildReasons(); });
    $("btn-rate-now").addEventListener("click", rateNow);
    $("btn-more-time").addEventListener("click", function () {
      lastTouch = 0; $("countdown").hidden = true; touched(); speak(t("yes_more"));
    });
    $("comment").addEventListener("input", keepDraft);
    ["pointerdown", "keydown", "input"].forEach(function (ev) {
      document.addEventListener(ev, touched, true);
    });
    window.addEventListener("resize", function () { if (local === "reasons") { buildReasons(); } });
    setInterval(countdown, 250);
    $("btn-submit").addEventListener("click", submitReasons);
    $("code-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var code = $("code-input").value.trim();
      var win = parseInt($("window-input").value.trim(), 10);
      if (/^[0-9]{6}$/.test(code) && win >= 0) { pair({ code: code, window_no: win }); }
    });
    pairFromAddress();
    window.addEventListener("hashchange", pairFromAddress);  // a QR opened over the open page
    render();
    if (st.pairing && !st.paired) { waitConfirmed(); }
    loop();
  }

  window.hallPad = {  // for diagnostics and tests: no secrets
    state: function () { return { pad_id: st.pad_id, public_key: st.pk, counter: st.counter, paired: !!st.paired, pairing: st.pairing || null, fingerprint: st.pk ? fingerprint() : null, screen: document.body.getAttribute("data-screen"), lang: lang }; }
  };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
