// The staff pages' small enhancements; every page works without them.
// 1. Copy buttons beside snippets and links (shown only where the clipboard can be used).
// 2. A dashboard ([data-live]) refreshes its figures every minute while it is visible.
(function () {
  "use strict";

  function copyButtons() {
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      var button = buttons[i];
      var source = document.getElementById(button.getAttribute("data-copy"));
      var status = document.querySelector('[data-copied="' + button.getAttribute("data-copy") + '"]');
      if (!source || !navigator.clipboard) continue;
      button.hidden = false;
      button.addEventListener("click", (function (source, status) {
        return function () {
          navigator.clipboard.writeText(source.value).then(function () {
            if (status) status.textContent = "Copied.";
          }, function () {
            source.select();
            if (status) status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
          });
        };
      })(source, status));
    }
  }

  function liveDashboard() {
    var live = document.querySelector("[data-live]");
    if (!live || !window.fetch || !window.DOMParser) return;
    var seconds = parseInt(live.getAttribute("data-live"), 10) || 60;
    setInterval(function () {
      if (document.hidden) return;
      // Not while someone is reading a table or has a menu open.
      if (document.activeElement && live.contains(document.activeElement) && document.activeElement !== document.body) return;
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (response) {
        if (!response.ok || response.redirected) return null;
        return response.text();
      }).then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        if (fresh) live.replaceWith(document.importNode(fresh, true));
        live = document.querySelector("[data-live]");
      }).catch(function () { /* the next round tries again */ });
    }, seconds * 1000);
  }

  copyButtons();
  liveDashboard();
})();
