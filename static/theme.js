// Light, dark, or the system's choice: the header button cycles through
// them and the choice is remembered in this browser. Loaded in <head>
// (not deferred) so the page paints in the chosen theme.
(function () {
  "use strict";
  var root = document.documentElement;
  var order = ["system", "dark", "light"];
  function apply(theme) {
    if (theme === "dark" || theme === "light") root.dataset.theme = theme;
    else delete root.dataset.theme;
  }
  function current() {
    try { return localStorage.getItem("theme") || "system"; } catch (e) { return "system"; }
  }
  apply(current());
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-theme-toggle]");
    if (!btn) return;
    var next = order[(order.indexOf(current()) + 1) % order.length];
    try { localStorage.setItem("theme", next); } catch (err) { /* private mode: this page only */ }
    apply(next);
    btn.textContent = "Theme: " + next;
  });
  document.addEventListener("DOMContentLoaded", function () {
    var btn = document.querySelector("[data-theme-toggle]");
    if (btn) { btn.textContent = "Theme: " + current(); btn.hidden = false; }
  });
})();
