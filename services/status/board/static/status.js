// Refreshes the page's cards from status.json every few seconds, without reloading the page.
(function () {
  "use strict";
  var every = 5000;
  function text(el, sel, value) { var n = el.querySelector(sel); if (n) { n.textContent = value; } }
  function card(s) {
    var li = document.createElement("li");
    li.className = "service state-" + s.state;
    li.dataset.name = s.name;
    li.innerHTML = '<div class="head"><span class="name"></span><span class="badge"></span></div>' +
      '<dl><dt>version</dt><dd class="version"></dd><dt>go</dt><dd class="go"></dd>' +
      '<dt>latency</dt><dd class="latency"></dd><dt>checked</dt><dd class="checked"></dd></dl>';
    text(li, ".name", s.name);
    text(li, ".badge", s.state);
    text(li, ".version", s.version || "unknown");
    text(li, ".go", s.go || "unknown");
    text(li, ".latency", s.latencyMs.toFixed(1) + " ms");
    text(li, ".checked", s.checkedAt && s.checkedAt.indexOf("0001-") !== 0 ? s.checkedAt : "not yet");
    if (s.error) { var p = document.createElement("p"); p.className = "error"; p.textContent = s.error; li.appendChild(p); }
    return li;
  }
  function render(r) {
    text(document, "#env", r.environment);
    text(document, "#summary", r.ready + " of " + r.total + " services ready");
    var list = document.getElementById("services");
    list.replaceChildren.apply(list, r.services.length ? r.services.map(card) : [Object.assign(document.createElement("li"), { className: "empty", textContent: "No services to watch." })]);
  }
  function refresh() {
    fetch("/status.json", { cache: "no-store" })
      .then(function (resp) { return resp.ok ? resp.json() : Promise.reject(resp.status); })
      .then(render)
      .catch(function () { /* keep the last view; the next refresh tries again */ })
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
