/* Pledge widget loader. Paste once per page:
     <div class="pledge-widget" data-pledge="SLUG" data-token="TOKEN"></div>
     <script async src="https://WIDGET-SERVER/widget.js"></script>
   Optional on the div: data-kind="counter" (counter only), data-goal="N", data-title="…".
   Defines one global, window.PledgeWidget, with scan() for pages that add widgets later. */
(function (w, d) {
  "use strict";
  if (w.PledgeWidget) return w.PledgeWidget.scan();
  var script = d.currentScript || d.querySelector('script[src$="/widget.js"]');
  var server = new URL(script.src, location.href).origin;
  var passOn = ["source", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];
  var mounted = [];

  function frameUrl(el, counter) {
    var query = new URLSearchParams();
    var page = new URLSearchParams(location.search);
    var token = el.getAttribute("data-token");
    if (token) query.set("token", token);
    query.set("parent", location.origin);
    passOn.forEach(function (key) {
      var value = page.get(key);
      if (value) query.set(key, value.slice(0, 100));
    });
    if (counter && el.getAttribute("data-goal")) query.set("goal", el.getAttribute("data-goal"));
    var slug = encodeURIComponent(el.getAttribute("data-pledge"));
    return server + "/embed/" + slug + (counter ? "/counter" : "") + "?" + query;
  }

  function mount(el) {
    if (el.hasAttribute("data-pledge-mounted") || !el.getAttribute("data-pledge")) return;
    var counter = el.getAttribute("data-kind") === "counter";
    var frame = d.createElement("iframe");
    frame.src = frameUrl(el, counter);
    frame.title = el.getAttribute("data-title") || (counter ? "Pledge signatures so far" : "Sign the pledge");
    frame.setAttribute("sandbox", "allow-scripts allow-forms allow-same-origin allow-popups allow-popups-to-escape-sandbox");
    frame.style.cssText = "display:block;width:100%;max-width:100%;border:0;overflow:hidden;height:" + (counter ? 130 : 900) + "px";
    frame.scrolling = "no";
    el.setAttribute("data-pledge-mounted", "");
    el.appendChild(frame);
    mounted.push({ el: el, frame: frame });
  }

  function scan() {
    var found = d.querySelectorAll(".pledge-widget[data-pledge]");
    for (var i = 0; i < found.length; i++) mount(found[i]);
  }

  w.addEventListener("message", function (event) {
    var data = event.data;
    if (event.origin !== server || !data || typeof data.type !== "string") return;
    for (var i = 0; i < mounted.length; i++) {
      var widget = mounted[i];
      if (widget.frame.contentWindow !== event.source) continue;
      if (data.type === "pledge:resize" && data.height > 0 && data.height < 20000) {
        widget.frame.style.height = Math.ceil(data.height) + "px";
      } else if (data.type === "pledge:signed") {
        var pledge = widget.el.getAttribute("data-pledge");
        var total = Number(data.total) || 0;
        widget.el.dispatchEvent(new CustomEvent("pledge:signed", {
          bubbles: true,
          detail: { pledge: pledge, total: total }
        }));
        // Other widgets of the same pledge on this page (a counter badge) show the new count too.
        mounted.forEach(function (other) {
          var target = other.frame.contentWindow;
          if (other !== widget && target && other.el.getAttribute("data-pledge") === pledge) {
            target.postMessage({ type: "pledge:count", total: total }, server);
          }
        });
      }
    }
  });

  w.PledgeWidget = { scan: scan };
  scan();
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", scan);
})(window, document);
