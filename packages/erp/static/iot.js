// The IoT page's script (served by the database, loaded with the page's CSP nonce): the token's Copy
// button, and Download logs, which first checks from this browser that the box answers at its HTTPS
// address (its /api/ping is open to every origin) and only then opens the box's log download.
(function () {
  "use strict";
  var PING_TIMEOUT_MS = 5000;

  function ping(url) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, PING_TIMEOUT_MS);
    return fetch(url + "api/ping", { mode: "cors", cache: "no-store", credentials: "omit", signal: controller ? controller.signal : undefined })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        clearTimeout(timer);
        if (!body || body.ok !== true) throw new Error("not a box");
      }, function (err) {
        clearTimeout(timer);
        throw err;
      });
  }

  function downloadLogs(button) {
    var table = button.closest("table");
    var status = button.parentNode.querySelector(".reach");
    var url = button.getAttribute("data-url");
    status.textContent = table.getAttribute("data-reaching");
    ping(url).then(function () {
      status.textContent = "";
      // The box answers with an attachment: the browser downloads it and this page stays.
      window.location.assign(url + "logs/download");
    }, function () {
      status.textContent = table.getAttribute("data-unreachable");
    });
  }

  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var done = function () { button.textContent = button.getAttribute("data-copied"); };
    field.select();
    var fallback = function () { document.execCommand("copy"); done(); };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(field.value).then(done, fallback);
    else fallback();
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    if (!target) return;
    var copyButton = target.closest("[data-copy]");
    if (copyButton) copy(copyButton);
    var download = target.closest(".download-logs");
    if (download) downloadLogs(download);
  });
})();
