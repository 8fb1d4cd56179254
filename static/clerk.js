// Loads ClerkJS and its UI from the instance's Frontend API host (set by the
// server in data attributes; no inline script, no build step), keeps the
// session cookie fresh on every page, and performs the page's action:
// mount sign-in or sign-up, refresh an expired session, or sign out.
(function () {
  "use strict";
  var me = document.currentScript;
  var fapi = me.dataset.fapi;
  var pk = me.dataset.publishableKey;
  var action = me.dataset.action || "";
  var redirect = me.dataset.redirect || "/";

  function load(src, attrs) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.async = true;
      s.crossOrigin = "anonymous";
      Object.keys(attrs || {}).forEach(function (k) { s.setAttribute(k, attrs[k]); });
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }

  function fail(err) {
    var mount = document.getElementById("clerk-mount");
    if (mount) {
      mount.textContent = "Sign-in could not load (" + err.message + "). Check your connection and reload.";
      mount.className = "error";
    }
  }

  Promise.all([
    load("https://" + fapi + "/npm/@clerk/clerk-js@6/dist/clerk.browser.js", { "data-clerk-publishable-key": pk }),
    load("https://" + fapi + "/npm/@clerk/ui@1/dist/ui.browser.js"),
  ]).then(function () {
    return window.Clerk.load({ ui: { ClerkUI: window.__internal_ClerkUICtor } });
  }).then(function () {
    var Clerk = window.Clerk;
    var mount = document.getElementById("clerk-mount");
    switch (action) {
      case "sign-in":
        if (Clerk.user) { window.location.replace(redirect); return; }
        Clerk.mountSignIn(mount, { forceRedirectUrl: redirect, signUpUrl: "/sign-up?redirect_url=" + encodeURIComponent(redirect) });
        break;
      case "sign-up":
        if (Clerk.user) { window.location.replace(redirect); return; }
        Clerk.mountSignUp(mount, { forceRedirectUrl: redirect, signInUrl: "/sign-in?redirect_url=" + encodeURIComponent(redirect) });
        break;
      case "refresh":
        // Clerk.load() has written a fresh __session cookie if the session lives.
        window.location.replace(Clerk.user ? redirect : "/sign-in?redirect_url=" + encodeURIComponent(redirect));
        break;
      case "sign-out":
        Clerk.signOut({ redirectUrl: "/sign-in" });
        break;
    }
  }).catch(fail);
})();
