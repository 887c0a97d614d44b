/* The call display's only script (hall_server/display.py): keeps the board live from the
   display stream, reconnects through outages, and speaks each call. Plain ES2017, no library. */
"use strict";
(function () {
  var body = document.body;
  var page = body.getAttribute("data-page");
  if (page !== "hall" && page !== "window") { return; }
  var win = body.getAttribute("data-window") || "";
  var voice = body.getAttribute("data-voice") === "1";
  var lastId = body.getAttribute("data-after") || "";
  var RECENT = 6, FRESH_MS = 60000;
  var STATE = { open: ["等待叫号", "Waiting"], paused: ["暂停服务", "Paused"], closed: ["未开放", "Closed"] };
  var board = JSON.parse(document.getElementById("board-data").textContent || "{}");
  var byNo = {};
  (board.windows || []).forEach(function (w) { byNo[w.no] = w; });

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined) { n.textContent = text; }
    return n;
  }
  function bi(zh, en) {
    var f = document.createDocumentFragment();
    f.appendChild(el("span", "", zh));
    f.appendChild(document.createTextNode(" "));
    var e = el("span", "en", en);
    e.lang = "en";
    f.appendChild(e);
    return f;
  }
  function clear(n) { while (n.firstChild) { n.removeChild(n.firstChild); } }

  // ---- rendering: the same markup display.py writes -------------------------------------------
  function renderHall() {
    var now = board.recent[0];
    var body_ = document.getElementById("now-body");
    clear(body_);
    var line = el("p", "now-line" + (now ? "" : " idle"));
    var num = el("span", "num", now ? now.number : "");
    num.id = "now-num";
    line.appendChild(num);
    if (now) {
      var arrow = el("span", "arrow", "→");
      arrow.setAttribute("aria-hidden", "true");
      line.appendChild(arrow);
      var w = el("span", "win", String(now.window_no));
      w.id = "now-win";
      w.appendChild(el("small", "", "号窗口"));
      line.appendChild(w);
    }
    body_.appendChild(line);
    var say = el("p", "say", now ? now.show_zh : "请留意叫号");
    say.id = "now-say";
    body_.appendChild(say);
    var sayEn = el("p", "say-en", now ? now.show_en : "Please wait for your number");
    sayEn.id = "now-say-en";
    sayEn.lang = "en";
    body_.appendChild(sayEn);

    var ol = document.getElementById("recent");
    clear(ol);
    board.recent.slice(1).forEach(function (c) {
      var li = el("li");
      li.appendChild(el("span", "num", c.number));
      var ws = el("span", "win", c.window_no + " 号窗口 ");
      var en = el("span", "en", "Window " + c.window_no);
      en.lang = "en";
      ws.appendChild(en);
      li.appendChild(ws);
      ol.appendChild(li);
    });

    var ul = document.getElementById("windows");
    clear(ul);
    // The same column count as display.py's tile_columns().
    var n = board.windows.length;
    ul.className = "cols-" + Math.max(4, Math.min(10, Math.ceil(n / (n <= 20 ? 2 : 3))));
    board.windows.forEach(function (w) {
      var li = el("li", "tile state-" + w.state + (w.current ? " busy" : ""));
      li.setAttribute("data-no", String(w.no));
      li.appendChild(el("span", "wname", w.no + " 号窗口"));
      if (w.current) {
        li.appendChild(el("span", "wnum", w.current));
      } else {
        var s = STATE[w.state] || STATE.closed;
        var st = el("span", "wstate");
        st.appendChild(bi(s[0], s[1]));
        li.appendChild(st);
      }
      ul.appendChild(li);
    });
  }

  function renderWindow() {
    var w = board.windows[0];
    if (!w) { return; }
    document.getElementById("w-num").textContent = w.current || "";
    var st = document.getElementById("w-state");
    clear(st);
    var s = w.current ? ["请到本窗口办理", "Please come to this window"] : (STATE[w.state] || STATE.closed);
    st.appendChild(bi(s[0], s[1]));
  }

  function fit() {
    // The call now as large as its panel allows: the CSS size fits the panel's height; shrink
    // it here when the number and window are wider than the panel (5-character numbers,
    // window 12).
    var line = document.querySelector(".now-line");
    if (!line) { return; }
    line.style.fontSize = "";
    var need = 0, kids = line.children;
    for (var i = 0; i < kids.length; i++) { need += kids[i].getBoundingClientRect().width; }
    var px = parseFloat(getComputedStyle(line).fontSize);
    need += 0.12 * px * Math.max(0, kids.length - 1);
    var avail = line.clientWidth * 0.98;
    if (need > avail) { line.style.fontSize = Math.floor(px * avail / need) + "px"; }
  }
  function render() {
    if (page === "hall") { renderHall(); fit(); } else { renderWindow(); }
  }

  function flash() {
    var now = document.getElementById("now");
    if (!now) { return; }
    now.classList.remove("flash");
    void now.offsetWidth; // restart the animation
    now.classList.add("flash");
  }

  // ---- the model ------------------------------------------------------------------------------
  function setBoard(b) {
    board = b;
    byNo = {};
    board.windows.forEach(function (w) { byNo[w.no] = w; });
    render();
  }
  function onCall(c) {
    board.recent = [c].concat(board.recent.filter(function (r) {
      return !(r.number === c.number && r.window_no === c.window_no);
    })).slice(0, RECENT);
    for (var no in byNo) {
      if (byNo[no].current === c.number) { byNo[no].current = null; }
    }
    if (byNo[c.window_no]) { byNo[c.window_no].current = c.number; }
    render();
    if (c.age_ms < FRESH_MS) {
      flash();
      if (voice) { announce(c); }
    }
  }

  // ---- speaking -------------------------------------------------------------------------------
  var queue = [], busy = false;
  function announce(c) {
    queue.push(c);
    if (queue.length > 10) { queue.shift(); }
    pump();
  }
  function pump() {
    if (busy || !queue.length) { return; }
    busy = true;
    speakOne(queue.shift()).then(done, done);
    function done() { busy = false; pump(); }
  }
  function voiceFor(re) {
    if (!window.speechSynthesis) { return null; }
    var vs = window.speechSynthesis.getVoices() || [];
    for (var i = 0; i < vs.length; i++) { if (re.test(vs[i].lang || "")) { return vs[i]; } }
    return null;
  }
  function say(text, v, lang) {
    return new Promise(function (resolve) {
      var u = new SpeechSynthesisUtterance(text);
      try { u.voice = v; } catch (e) { /* only a real SpeechSynthesisVoice is accepted */ }
      u.lang = lang;
      u.rate = 0.9;
      var t = setTimeout(function () { resolve(true); }, 20000);
      u.onend = function () { clearTimeout(t); resolve(true); };
      u.onerror = function () { clearTimeout(t); resolve(false); };
      window.speechSynthesis.speak(u);
    });
  }
  function play(url) {
    return new Promise(function (resolve) {
      var a = new Audio(url);
      var t = setTimeout(function () { resolve(false); }, 30000);
      function end(ok) { clearTimeout(t); resolve(ok); }
      a.onended = function () { end(true); };
      a.onerror = function () { end(false); };
      var p = a.play();
      if (p && p.catch) {
        p.catch(function (e) {
          if (e && e.name === "NotAllowedError") { document.getElementById("sound").hidden = false; }
          end(false);
        });
      }
    });
  }
  async function speakOne(c) {
    // The browser's own Chinese voice where it has one (and an English one when the hall
    // speaks English too); else the clip the server made with espeak-ng.
    var zh = voiceFor(/^(zh|cmn)/i), en = c.say_en ? voiceFor(/^en/i) : null;
    if (zh && (!c.say_en || en)) {
      await play("/display/chime.wav");
      if (await say(c.say_zh, zh, "zh-CN")) {
        if (c.say_en) { await say(c.say_en, en, "en-US"); }
        return;
      }
    }
    await play("/display/audio/" + c.id + ".wav" + (c.say_en ? "?en=1" : ""));
  }
  document.getElementById("sound").addEventListener("click", function () {
    // A browser that blocks sound until someone touches it: one tap by IT unlocks it.
    this.hidden = true;
    play("/display/chime.wav");
  });

  // ---- the stream, and coming back after an outage -------------------------------------------
  var es = null, delay = 1000;
  function offline(on) {
    document.getElementById("offline").hidden = !on;
    body.setAttribute("data-live", on ? "0" : "1");
  }
  function data(ev) { if (ev.lastEventId) { lastId = ev.lastEventId; } return JSON.parse(ev.data); }
  function connect() {
    var q = [];
    if (win) { q.push("window=" + encodeURIComponent(win)); }
    if (lastId) { q.push("after=" + encodeURIComponent(lastId)); }
    es = new EventSource("/display/events" + (q.length ? "?" + q.join("&") : ""));
    es.addEventListener("open", function () { offline(false); delay = 1000; });
    es.addEventListener("board", function (ev) { setBoard(data(ev)); });
    es.addEventListener("call", function (ev) { onCall(data(ev)); });
    es.addEventListener("current", function (ev) {
      var d = data(ev);
      if (byNo[d.window_no]) { byNo[d.window_no].current = d.number; render(); }
    });
    es.addEventListener("clear", function (ev) {
      var d = data(ev);
      if (byNo[d.window_no]) { byNo[d.window_no].current = null; render(); }
    });
    es.addEventListener("window", function (ev) {
      var d = data(ev);
      if (byNo[d.window_no]) { byNo[d.window_no].state = d.state; render(); }
    });
    es.addEventListener("revoked", function () { es.close(); location.reload(); });
    es.addEventListener("error", function () {
      offline(true);
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered with an error, e.g. a proxy's 502 while
        // the hall server restarts): try again ourselves, from the last event we saw. If the
        // server is up and refuses this display (its key was revoked while it was away),
        // reload to show why; never reload while the server is unreachable (the browser's
        // error page would not come back by itself).
        es.close();
        var retry = function () { setTimeout(connect, delay); delay = Math.min(delay * 2, 10000); };
        fetch(location.pathname, { cache: "no-store", credentials: "same-origin" }).then(function (r) {
          if (r.status === 401 || r.status === 403 || r.status === 404) { location.reload(); } else { retry(); }
        }, retry);
      }
    });
  }

  function tick() {
    var d = new Date();
    var c = document.getElementById("clock");
    c.textContent = ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }
  tick();
  setInterval(tick, 5000);
  if (page === "hall") { fit(); window.addEventListener("resize", fit); }
  connect();
})();
