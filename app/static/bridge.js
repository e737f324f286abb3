// The only script: live refresh of the incident list, and copy-to-clipboard buttons.
(function () {
  "use strict";
  var REFRESH_MS = 3000;

  function refreshList(container) {
    var known = {};
    container.querySelectorAll("tr[data-incident-id]").forEach(function (row) {
      known[row.dataset.incidentId + ":" + row.textContent.length] = true;
    });
    fetch(container.dataset.refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        container.innerHTML = html;
        container.querySelectorAll("tr[data-incident-id]").forEach(function (row) {
          if (!known[row.dataset.incidentId + ":" + row.textContent.length]) { row.classList.add("new"); }
        });
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("incident-rows");
    if (container) {
      setInterval(function () {
        if (!document.hidden) { refreshList(container); }
      }, REFRESH_MS);
    }
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.dataset.copy);
        field.select();
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
  });
})();

// Times: the server writes <time datetime="...Z" data-local>UTC text</time>; here each is
// shown in the reader's time zone with a relative form ("4 min ago"), the UTC text kept in
// the tooltip. Rows a refresh puts in are localised as they arrive (MutationObserver), and
// the relative forms are brought up to date every 30 s.
(function () {
  "use strict";

  function pad(number) { return (number < 10 ? "0" : "") + number; }

  function localText(moment) {
    return moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
      " " + pad(moment.getHours()) + ":" + pad(moment.getMinutes());
  }

  function relative(moment, now) {
    var seconds = Math.round((now - moment) / 1000);
    var future = seconds < 0;
    var size = Math.abs(seconds);
    var words;
    if (size < 45) { return "just now"; }
    if (size < 90) { words = "1 min"; }
    else if (size < 45 * 60) { words = Math.round(size / 60) + " min"; }
    else if (size < 90 * 60) { words = "1 h"; }
    else if (size < 22 * 3600) { words = Math.round(size / 3600) + " h"; }
    else if (size < 36 * 3600) { words = "1 day"; }
    else if (size < 60 * 86400) { words = Math.round(size / 86400) + " days"; }
    else { return null; }
    return future ? "in " + words : words + " ago";
  }

  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }

  function show(element, now) {
    var moment = new Date(element.getAttribute("datetime"));
    if (isNaN(moment.getTime())) { return; }
    var said = relative(moment, now);
    var text = localText(moment) + (said ? " (" + said + ")" : "");
    if (element.textContent !== text) { element.textContent = text; }
  }

  function localise(root, now) {
    root.querySelectorAll("time[data-local]:not([data-localised])").forEach(function (element) {
      var utc = element.getAttribute("title") || element.textContent;
      element.setAttribute("data-localised", "");
      element.setAttribute("title", utc + (zone ? " · shown in " + zone : ""));
      show(element, now);
    });
  }

  function refreshRelative() {
    var now = new Date();
    document.querySelectorAll("time[data-localised]").forEach(function (element) {
      // Not inside a live region: a screen reader would read every tick out (the list's
      // rows are rendered afresh by its own refresh).
      if (!element.closest("[aria-live]")) { show(element, now); }
    });
  }

  window.bridgeLocaliseTimes = function (root) { localise(root || document, new Date()); };

  document.addEventListener("DOMContentLoaded", function () {
    localise(document, new Date());
    if (window.MutationObserver) {
      new MutationObserver(function () { localise(document, new Date()); })
        .observe(document.body, { childList: true, subtree: true });
    }
    setInterval(refreshRelative, 30000);
  });
})();
