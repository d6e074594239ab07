// The POS test page's script (served by the database, loaded with the page's CSP nonce): calls each box
// from this browser, as a point-of-sale page does. Kept apart from the page so that it can move to the
// browser module @boxcert/web: callBox() is the one place that talks to a box.
(function () {
  "use strict";
  var TIMEOUT_MS = 10000;

  // GET <box>api/status, or POST <box>api/pos/test with {"note": "POS test"}: the box answers this
  // database's origin (CORS) once it has registered with it.
  function callBox(url, kind) {
    var init = { mode: "cors", cache: "no-store", credentials: "omit" };
    if (kind === "test") {
      init.method = "POST";
      init.headers = { "content-type": "application/json" };
      init.body = JSON.stringify({ note: "POS test" });
    }
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    if (controller) init.signal = controller.signal;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, TIMEOUT_MS);
    return fetch(url + (kind === "test" ? "api/pos/test" : "api/status"), init)
      .then(function (response) {
        return response.text().then(function (text) {
          clearTimeout(timer);
          return { status: response.status, text: text };
        });
      }, function (err) {
        clearTimeout(timer);
        throw err;
      });
  }

  function pretty(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // Not JSON: shown as it came.
      return text;
    }
  }

  function call(button) {
    var table = button.closest("table");
    var out = button.closest("tr").querySelector(".answer");
    out.textContent = "…";
    callBox(button.getAttribute("data-url"), button.getAttribute("data-call")).then(function (answer) {
      out.textContent = table.getAttribute("data-answered").replace("{status}", String(answer.status)) + "\n" + pretty(answer.text);
    }, function () {
      out.textContent = table.getAttribute("data-unreachable");
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-call]") : null;
    if (button) call(button);
  });
})();
