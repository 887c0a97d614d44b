/* The console's only script (no inline script anywhere: the Content-Security-Policy forbids it).
   1. The live hall page follows the server's event stream (/console/live/stream sends the
      re-rendered fragment on every change).
   2. Forms marked data-confirm (retire, remove, disable, reset, revoke) ask before posting. */
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var msg = form && form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
  var live = document.getElementById("live");
  if (!live || !window.EventSource) { return; }
  var es = new EventSource(live.getAttribute("data-src"));
  es.addEventListener("hall", function (e) {
    live.innerHTML = e.data;
    live.setAttribute("data-updated", String(Date.now()));
    live.removeAttribute("data-offline");
  });
  es.onerror = function () { live.setAttribute("data-offline", "1"); };
})();
