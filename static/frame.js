/* Runs inside the widget's iframe: reports its height to the partner page, and signs without
   a reload. Messages go only to the exact parent origin the server checked. */
(function () {
  "use strict";
  var root = document.documentElement;
  var parentOrigin = root.getAttribute("data-parent-origin");
  var framed = window.parent !== window;
  var lastHeight = 0;

  function post(message) {
    if (framed && parentOrigin) window.parent.postMessage(message, parentOrigin);
  }

  function reportHeight() {
    var height = Math.ceil(document.body.getBoundingClientRect().height);
    if (height !== lastHeight) {
      lastHeight = height;
      post({ type: "pledge:resize", height: height });
    }
  }

  function setCount(total) {
    var text = total.toLocaleString("en-GB");
    var nodes = document.querySelectorAll("[data-count]");
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = text;
    var labels = document.querySelectorAll("[data-count-label]");
    for (var j = 0; j < labels.length; j++) labels[j].textContent = total === 1 ? "person has" : "people have";
    var bars = document.querySelectorAll("progress.goal");
    for (var k = 0; k < bars.length; k++) bars[k].value = Math.min(total, bars[k].max);
  }

  function showErrors(form, result) {
    var first = null;
    var slots = form.querySelectorAll("[data-error-for]");
    for (var i = 0; i < slots.length; i++) {
      var name = slots[i].getAttribute("data-error-for");
      var message = (result.errors && result.errors[name]) || "";
      var input = form.elements[name];
      slots[i].textContent = message;
      slots[i].parentNode.classList.toggle("has-error", !!message);
      if (message) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      } else {
        input.removeAttribute("aria-invalid");
      }
    }
    var notice = form.querySelector("[data-form-message]");
    notice.textContent = result.message || (first ? "Please check the fields marked below." : "");
    if (result.form_token) form.elements.form_token.value = result.form_token;
    (first || notice).focus();
  }

  function showThanks(form, result) {
    var thanks = document.querySelector("[data-thanks]");
    var tally = document.querySelector("[data-tally]");
    setCount(result.total);
    // The thank-you carries the new count; one count on screen is clearer than two.
    if (tally) tally.hidden = true;
    form.hidden = true;
    thanks.hidden = false;
    thanks.querySelector("[data-thanks-heading]").focus();
    post({ type: "pledge:signed", total: result.total });
  }

  // The pledge asks signers to confirm from their mailbox: nothing counts yet, so the count
  // stays as it is and the partner's page hears of no signature.
  function showPending(form) {
    var thanks = document.querySelector("[data-thanks]");
    var signed = thanks.querySelector("[data-thanks-signed]");
    var pending = thanks.querySelector("[data-thanks-pending]");
    if (signed) signed.hidden = true;
    pending.hidden = false;
    form.hidden = true;
    thanks.hidden = false;
    pending.querySelector("[data-pending-heading]").focus();
  }

  function enhance(form) {
    var button = form.querySelector("[data-sign-button]");
    var notice = form.querySelector("[data-form-message]");
    notice.setAttribute("tabindex", "-1");
    form.addEventListener("submit", function (event) {
      if (!window.fetch || !window.URLSearchParams) return;
      event.preventDefault();
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json" },
        credentials: "omit"
      })
        .then(function (response) {
          return response.json().then(function (result) {
            if (result.status === "signed") showThanks(form, result);
            else if (result.status === "pending") showPending(form);
            else if (result.status === "invalid") showErrors(form, result);
            else showErrors(form, { message: result.error ? result.error.message : "Please try again." });
          });
        })
        .catch(function () {
          showErrors(form, { message: "Your signature could not be sent. Please check your connection and press Sign again." });
        })
        .then(function () {
          button.disabled = false;
          reportHeight();
        });
    });
  }

  // A sibling widget on the same page was signed: the loader passes on the new count.
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.source !== window.parent || !parentOrigin || event.origin !== parentOrigin) return;
    if (data && data.type === "pledge:count" && typeof data.total === "number" && data.total >= 0) {
      setCount(Math.floor(data.total));
    }
  });

  // The counter badge stays live: it re-reads the count every 30 s while it is on screen.
  var poll = document.querySelector("[data-count-poll]");
  if (poll && window.fetch) {
    setInterval(function () {
      if (document.hidden) return;
      fetch(poll.getAttribute("data-count-poll"), { credentials: "omit" })
        .then(function (response) { return response.json(); })
        .then(function (count) { if (typeof count.total === "number") setCount(count.total); })
        .catch(function () {});
    }, 30000);
  }

  var form = document.querySelector("[data-sign-form]");
  if (form) enhance(form);
  var signed = document.querySelector("[data-signed-total]");
  if (signed) post({ type: "pledge:signed", total: parseInt(signed.getAttribute("data-signed-total"), 10) });
  if (window.ResizeObserver) new ResizeObserver(reportHeight).observe(document.body);
  window.addEventListener("load", reportHeight);
  reportHeight();
})();
