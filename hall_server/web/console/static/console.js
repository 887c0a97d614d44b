/* The console's only script: the live hall page follows the server's event stream
   (/console/live/stream sends the re-rendered fragment on every change). No inline script
   anywhere (the Content-Security-Policy forbids it). */
(function () {
  "use strict";
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
