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
