/* Pledge widget loader (see README, "For partners"). It must work on any host page, so it uses
   no Array, String, Object or Function methods, no JSON or URL: syntax and a few DOM calls. */
(function (w, d) {
  "use strict";
  var SCAN = "pledge-widget:scan";
  var said = {};

  function say(key, sentence) {
    if (said[key]) return;
    said[key] = 1;
    try { w.console.warn("Pledge widget: " + sentence); } catch (e) {}
  }

  function signal(type, detail, cancelable) {
    return new w.CustomEvent(type, { bubbles: true, composed: true, cancelable: cancelable, detail: detail });
  }

  // A copy of this loader already runs here (the snippet twice, a tag manager): it mounts
  // whatever is new, and this copy stops.
  try {
    if (!d.dispatchEvent(signal(SCAN, { root: d }, true))) return;
  } catch (e) {}

  function cut(text, start, end) {
    var out = "";
    for (var i = start; i < end && i < text.length; i++) out += text[i];
    return out;
  }

  // Our address: currentScript, else (in a shadow root it is null) the URL in an error's stack.
  function scriptUrl() {
    var script = d.currentScript;
    if (script && script.src) return script.src;
    try {
      var stack = "" + new Error().stack;
      for (var end = 0; end < stack.length; end++) {
        if (cut(stack, end, end + 10) !== "/widget.js") continue;
        var start = end;
        while (start && stack[start - 1] !== " " && stack[start - 1] !== "(" && stack[start - 1] !== "@" &&
          stack[start - 1] !== "\n") start--;
        return cut(stack, start, end + 10);
      }
    } catch (e) {}
    return "";
  }

  var server = "";
  var slashes = 0;
  var src = scriptUrl();
  for (var s = 0; s < src.length && slashes < 3; s++) {
    if (src[s] === "/") slashes++;
    if (slashes < 3) server += src[s];
  }
  if (slashes < 3) return say("src", "could not tell where it was loaded from; paste the snippet's <script> unchanged.");
  var mounted = [];
  // Pairs, not an object: a page may add enumerable names to every object.
  var styles = [
    "display", "block", "visibility", "visible", "position", "static", "box-sizing", "content-box",
    "width", "100%", "min-width", "0", "max-width", "100%", "min-height", "0", "max-height", "none",
    "margin", "0", "padding", "0", "border", "0"
  ];
  var passOn = ["source", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];

  function decode(text) {
    var plain = "";
    for (var i = 0; i < text.length; i++) plain += text[i] === "+" ? " " : text[i];
    try { return decodeURIComponent(plain); } catch (e) { return ""; }
  }

  // The page's own campaign tags (?source=…&utm_…=…), passed on to the frame.
  function pageTags() {
    var query = location.search + "&";
    var out = "";
    var pair = ["", ""];
    var part = 0;
    for (var i = 1; i < query.length; i++) {
      if (query[i] === "&") {
        var key = decode(pair[0]);
        var value = decode(pair[1]);
        for (var k = 0; k < passOn.length; k++) {
          if (key === passOn[k] && value) out += "&" + key + "=" + encodeURIComponent(cut(value, 0, 100));
        }
        pair = ["", ""];
        part = 0;
      } else if (query[i] === "=" && !part) {
        part = 1;
      } else {
        pair[part] += query[i];
      }
    }
    return out;
  }

  function frameUrl(el, counter) {
    var token = el.getAttribute("data-token");
    var goal = el.getAttribute("data-goal");
    return server + "/embed/" + encodeURIComponent(el.getAttribute("data-pledge")) + (counter ? "/counter?" : "?") +
      (token ? "token=" + encodeURIComponent(token) + "&" : "") + "parent=" + encodeURIComponent(location.origin) +
      pageTags() + (counter && goal ? "&goal=" + encodeURIComponent(goal) : "");
  }

  // Inline and !important: no rule of the page's can hide or squash the frame.
  function setHeight(frame, height) {
    frame.style.setProperty("height", height + "px", "important");
  }

  function mount(el) {
    if (el.getAttribute("data-pledge-mounted") !== null || !el.getAttribute("data-pledge")) return 0;
    var counter = el.getAttribute("data-kind") === "counter";
    var frame = d.createElement("iframe");
    frame.setAttribute("title", el.getAttribute("data-title") || (counter ? "Pledge signatures so far" : "Sign the pledge"));
    frame.setAttribute("sandbox", "allow-scripts allow-forms allow-same-origin allow-popups allow-popups-to-escape-sandbox");
    frame.setAttribute("scrolling", "no");
    for (var i = 0; i < styles.length; i += 2) frame.style.setProperty(styles[i], styles[i + 1], "important");
    // The frame starts exactly as tall as the space the snippet reserved.
    var reserved = el.getBoundingClientRect().height;
    setHeight(frame, reserved > 0 ? reserved : counter ? 200 : 1500);
    frame.setAttribute("src", frameUrl(el, counter));
    el.setAttribute("data-pledge-mounted", "");
    el.appendChild(frame);
    mounted[mounted.length] = { el: el, frame: frame, pledge: el.getAttribute("data-pledge") };
    return 1;
  }

  function scan(root) {
    root = root || d;
    var count = 0;
    try {
      if (root.getAttribute && root.getAttribute("data-pledge") !== null) count += mount(root);
      var found = root.querySelectorAll(".pledge-widget[data-pledge]");
      for (var i = 0; i < found.length; i++) count += mount(found[i]);
    } catch (e) {
      say("scan", "scan(root) needs a document, an element or a shadow root (" + e + ").");
    }
    return count;
  }

  w.addEventListener("message", function (event) {
    var data = event.data;
    var widget = null;
    if (event.origin !== server || !data || typeof data.type !== "string") return;
    for (var i = 0; i < mounted.length; i++) if (mounted[i].frame.contentWindow === event.source) widget = mounted[i];
    if (!widget) return;
    if (data.type === "pledge:resize" && typeof data.height === "number" && data.height > 0 && data.height < 20000) {
      var height = data.height | 0;
      setHeight(widget.frame, height < data.height ? height + 1 : height);
      // The frame has its real height: the snippet's reservation has done its job.
      widget.el.style.removeProperty("min-height");
    } else if (data.type === "pledge:signed") {
      var total = typeof data.total === "number" && data.total >= 0 ? data.total : 0;
      try {
        widget.el.dispatchEvent(signal("pledge:signed", { pledge: widget.pledge, total: total }, false));
      } catch (e) {}
      // Other widgets of the same pledge on this page (a counter badge) show the new count too.
      for (var j = 0; j < mounted.length; j++) {
        var other = mounted[j].frame.contentWindow;
        if (mounted[j] !== widget && other && mounted[j].pledge === widget.pledge) {
          other.postMessage({ type: "pledge:count", total: total }, server);
        }
      }
    }
  });

  d.addEventListener(SCAN, function (request) {
    request.preventDefault();
    scan(request.detail && request.detail.root);
  });

  function check() {
    if (!mounted.length) {
      say("none", "no <div class=\"pledge-widget\" data-pledge=…> was found on this page. If it is in a shadow " +
        "root, call PledgeWidget.scan(root) with that root: a closed shadow root can be reached no other way.");
    }
  }

  if ("PledgeWidget" in w) {
    say("name", "this page already uses window.PledgeWidget, so the widget left it alone; to mount widgets added " +
      "later, run document.dispatchEvent(new CustomEvent(\"" + SCAN + "\", {detail: {root: root}})).");
  } else {
    w.PledgeWidget = { scan: scan };
  }
  scan(d);
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", function () { scan(d); });
  if (d.readyState === "complete") check();
  else w.addEventListener("load", check);
})(window, document);
