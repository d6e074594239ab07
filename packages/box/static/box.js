// The box homepage's script (served by the box; loaded with the page's CSP nonce): dialogs of the gear
// menu, reload when a running check ends, and whether this device reaches the HTTPS address.
(function () {
  "use strict";
  function openDialog(id) {
    var dialog = document.getElementById(id);
    if (!dialog || typeof dialog.showModal !== "function") return;
    var gear = document.getElementById("gear");
    if (gear) gear.open = false;
    dialog.showModal();
    var first = dialog.querySelector("input:not([type=hidden]), button");
    if (first) first.focus();
  }
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-open]") : null;
    if (target) {
      event.preventDefault();
      openDialog(target.getAttribute("data-open"));
    }
  });
  if (location.hash && /^#dlg-[a-z-]+$/.test(location.hash)) openDialog(location.hash.slice(1));

  if (document.body.getAttribute("data-checking") === "1") {
    var poll = function () {
      fetch("/api/status", { cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (s) { if (s.checking) setTimeout(poll, 1000); else location.reload(); })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 1000);
  }

  var check = document.getElementById("browser-check");
  if (check) {
    var url = check.getAttribute("data-url");
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, 5000);
    fetch(url + "api/ping", { mode: "cors", cache: "no-store", signal: controller ? controller.signal : undefined })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (!body || body.ok !== true) throw new Error("unexpected answer");
        check.textContent = check.getAttribute("data-ok");
        check.className = "browser-check ok";
      })
      .catch(function () {
        check.textContent = check.getAttribute("data-fail");
        check.className = "browser-check fail";
      })
      .then(function () { clearTimeout(timer); });
  }
})();
