// Gatehouse console enhancements in the htmx style: elements with hx-get or
// hx-post fetch HTML and swap it into hx-target (hx-swap: innerHTML, the
// default, or outerHTML). hx-trigger names the event (input is debounced).
// A file input with data-fill="#id" reads the chosen file into that textarea
// (IdP metadata uploaded from an air-gapped admin's disk).
// A select with data-autosubmit submits its form when it changes (the form
// has its own button for browsers without this script).
// A form with data-autosubmit is submitted at once (the form an interrupted
// action resumes with after "Confirm it's you"). A hidden button with
// data-copy="#id" is shown and copies that element's text.
// Every page also works without this script, as plain forms and links.
(function () {
  "use strict";

  function formQuery(form) {
    return new URLSearchParams(new FormData(form)).toString();
  }

  function csrfToken() {
    var el = document.querySelector('input[name="csrf_token"]');
    return el ? el.value : "";
  }

  function swap(el, html) {
    var sel = el.getAttribute("hx-target");
    var target = sel ? document.querySelector(sel) : el;
    if (!target) return;
    if ((el.getAttribute("hx-swap") || "innerHTML") === "outerHTML") {
      target.outerHTML = html;
    } else {
      target.innerHTML = html;
    }
  }

  function request(el) {
    var get = el.getAttribute("hx-get");
    var post = el.getAttribute("hx-post");
    var url = get || post;
    var opts = { method: get ? "GET" : "POST", credentials: "same-origin", headers: { "HX-Request": "true" } };
    if (el.tagName === "FORM") {
      if (get) {
        url += (url.indexOf("?") < 0 ? "?" : "&") + formQuery(el);
        history.replaceState(null, "", url);
      } else {
        opts.body = new URLSearchParams(new FormData(el));
        opts.headers["X-CSRF-Token"] = csrfToken();
      }
    }
    el.classList.add("htmx-busy");
    return fetch(url, opts)
      .then(function (r) { return r.text(); })
      .then(function (html) { swap(el, html); })
      .catch(function () { /* the plain form still works */ })
      .finally(function () { el.classList.remove("htmx-busy"); });
  }

  function wire(el) {
    var trigger = el.getAttribute("hx-trigger") || (el.tagName === "FORM" ? "submit" : "click");
    var timer = null;
    el.addEventListener(trigger, function (ev) {
      if (trigger === "submit" || trigger === "click") ev.preventDefault();
      if (trigger === "input") {
        clearTimeout(timer);
        timer = setTimeout(function () { request(el); }, 250);
      } else {
        request(el);
      }
    });
    if (el.tagName === "FORM" && trigger !== "submit") {
      el.addEventListener("submit", function (ev) { ev.preventDefault(); request(el); });
    }
  }

  function fill(input) {
    input.addEventListener("change", function () {
      var target = document.querySelector(input.getAttribute("data-fill"));
      var file = input.files && input.files[0];
      if (!target || !file) return;
      file.text().then(function (text) { target.value = text; });
    });
  }

  function copier(btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var el = document.querySelector(btn.getAttribute("data-copy"));
      if (!el) return;
      var text = el.textContent.trim();
      var done = function () { btn.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var range = document.createRange();
        range.selectNodeContents(el);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        if (document.execCommand("copy")) done();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(copier);
    var resume = document.querySelector("form[data-autosubmit]");
    if (resume) resume.submit();
    document.querySelectorAll("[hx-get],[hx-post]").forEach(wire);
    document.querySelectorAll("input[type=file][data-fill]").forEach(fill);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { if (sel.form) sel.form.submit(); });
    });
  });
})();
