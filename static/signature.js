// Signature editor: turns textarea[data-editor] into a Squire rich-text
// editor with a small toolbar, keeps the textarea in sync (it is what the
// form submits) and refreshes the server-sanitized preview as you type.
// Without JavaScript the textarea is edited as HTML.
(function () {
  "use strict";
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-Csrf-Token"]; } catch (e) { return ""; }
  }
  // Inline styles a signature keeps (the server allows the same ones).
  var keptStyles = ["color", "background-color", "font-size", "font-family", "font-weight", "font-style",
    "text-decoration", "text-align"];
  // Pasted HTML (from Word, Outlook, a web page): parsed inert, stripped
  // of active content, styles reduced to keptStyles; the server sanitizes
  // again on save.
  function toFragment(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    tpl.content.querySelectorAll("script,style,iframe,object,embed,link,meta,title,xml").forEach(function (n) { n.remove(); });
    tpl.content.querySelectorAll("*").forEach(function (el) {
      Array.prototype.slice.call(el.attributes).forEach(function (a) {
        if (/^on/i.test(a.name) || /^\s*javascript:/i.test(a.value)) el.removeAttribute(a.name);
        else if (a.name === "class") el.removeAttribute(a.name);
      });
      if (el.hasAttribute("style")) {
        // Parsed by hand: a template's inert document has no CSSOM.
        var kept = el.getAttribute("style").split(";").map(function (decl) {
          var i = decl.indexOf(":");
          if (i < 0) return "";
          var prop = decl.slice(0, i).trim().toLowerCase(), value = decl.slice(i + 1).trim();
          return keptStyles.indexOf(prop) >= 0 && value && !/url\(|expression|[<>"]/i.test(value) ? prop + ": " + value : "";
        }).filter(Boolean).join("; ");
        if (kept) el.setAttribute("style", kept); else el.removeAttribute("style");
      }
    });
    return tpl.content;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var area = document.querySelector("textarea[data-editor]");
    if (!area || !window.Squire) return;
    var preview = document.getElementById("signature-preview");
    var box = document.createElement("div");
    box.className = "editor";
    box.setAttribute("role", "textbox");
    box.setAttribute("aria-multiline", "true");
    box.setAttribute("aria-label", "Signature");
    box.dataset.testid = "signature-editor";
    var bar = document.createElement("div");
    bar.className = "toolbar";
    bar.setAttribute("role", "toolbar");
    bar.setAttribute("aria-label", "Formatting");
    area.parentNode.insertBefore(bar, area);
    area.parentNode.insertBefore(box, area);
    area.hidden = true;
    var editor = new window.Squire(box, { sanitizeToDOMFragment: toFragment });
    editor.setHTML(area.value);
    // HTML source view: the textarea itself, edited as HTML.
    function showSource(on) {
      if (on) area.value = editor.getHTML(); else editor.setHTML(area.value);
      area.hidden = !on;
      box.hidden = on;
      bar.querySelectorAll("button").forEach(function (b) { if (b.dataset.testid !== "editor-html") b.disabled = on; });
      refresh();
    }
    var buttons = [
      ["Bold", function () { editor.hasFormat("B") ? editor.removeBold() : editor.bold(); }],
      ["Italic", function () { editor.hasFormat("I") ? editor.removeItalic() : editor.italic(); }],
      ["Underline", function () { editor.hasFormat("U") ? editor.removeUnderline() : editor.underline(); }],
      ["List", function () { editor.hasFormat("UL") ? editor.removeList() : editor.makeUnorderedList(); }],
      ["Image", function () {
        var url = window.prompt("Image address (https://…, hosted where recipients can load it)");
        if (url && /^https:\/\//i.test(url)) editor.insertImage(url, { alt: "" });
      }],
      ["Link", function () {
        var url = window.prompt("Link address (https://…)");
        if (url && /^(https?:|mailto:)/i.test(url)) editor.makeLink(url);
      }],
      ["Clear formatting", function () { editor.removeAllFormatting(); }],
      ["HTML", function () { showSource(area.hidden); }],
    ];
    buttons.forEach(function (b) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "button secondary small";
      btn.textContent = b[0];
      btn.dataset.testid = "editor-" + b[0].toLowerCase().split(" ")[0];
      btn.addEventListener("click", function () { b[1](); if (area.hidden) editor.focus(); });
      bar.appendChild(btn);
    });
    var timer;
    function refresh() {
      if (area.hidden) area.value = editor.getHTML();
      if (!preview) return;
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch("/accounts/signature-preview", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Csrf-Token": csrfToken(), "HX-Request": "true" },
          body: new URLSearchParams({ signature_html: area.value }),
          credentials: "same-origin",
        }).then(function (r) { return r.ok ? r.text() : ""; }).then(function (html) {
          if (html) preview.outerHTML = html;
          preview = document.getElementById("signature-preview");
        });
      }, 250);
    }
    editor.addEventListener("input", refresh);
    editor.addEventListener("pathChange", refresh);
    area.addEventListener("input", refresh);
  });
})();
