// The only script: the incident list (live refresh in place, selection, keyboard
// shortcuts, folding filters) and copy-to-clipboard buttons. The pages work without it.
(function () {
  "use strict";
  var REFRESH_MS = 3000;
  // A new row stays highlighted until it is hovered or focused, or has been on screen in
  // a visible page for this long.
  var SEEN_AFTER_MS = 10000;
  var BASE_TITLE = document.title.replace(/^\(\d+\)\s*/, "");

  // ------------------------------------------------------------ small helpers

  function rowsOf(root) {
    return Array.prototype.slice.call(root.querySelectorAll("tr[data-incident-id]"));
  }

  function isTyping(target) {
    if (!target || !target.tagName) { return false; }
    if (target.isContentEditable) { return true; }
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") { return true; }
    if (tag !== "input") { return false; }
    var kind = (target.getAttribute("type") || "text").toLowerCase();
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(kind) === -1;
  }

  function timeText(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function titleOf(row) {
    var link = row.querySelector(".incident-link");
    return link ? link.textContent.trim() : "incident " + row.dataset.incidentId;
  }

  // ------------------------------------------------------------ the incident list

  function IncidentList(container) {
    this.container = container;
    this.url = container.dataset.refreshUrl;
    this.loginUrl = container.dataset.loginUrl;
    this.status = document.getElementById("refresh-status");
    this.problem = document.getElementById("refresh-problem");
    this.announcer = document.getElementById("incident-announcer");
    this.form = document.getElementById("bulk-form");
    this.selectedCount = document.getElementById("selected-count");
    this.inFlight = false;
    this.lastSuccess = new Date();
    this.visibleSince = {};
    this.seenAfterMs = SEEN_AFTER_MS;
    this.setTitle(container.querySelector(".rows"));
    this.status.textContent = "Updated " + timeText(this.lastSuccess);  // local time, like the rest
    this.watchSelection();
    this.watchSeen();
  }

  IncidentList.prototype.setTitle = function (rows) {
    var count = rows ? parseInt(rows.dataset.triggeredCount || "0", 10) : 0;
    document.title = (count > 0 ? "(" + count + ") " : "") + BASE_TITLE;
  };

  IncidentList.prototype.refresh = function () {
    var self = this;
    if (self.inFlight) { return; }
    self.inFlight = true;
    // A server that does not answer counts as a failure within one refresh interval.
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REFRESH_MS) : null;
    fetch(self.url, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
      signal: controller ? controller.signal : undefined
    })
      .then(function (response) {
        var landed = new URL(response.url, window.location.href);
        if (response.status === 401 || (response.redirected && landed.pathname === self.loginUrl)) {
          return { problem: "session" };
        }
        if (!response.ok) { return { problem: "status", status: response.status }; }
        return response.text().then(function (html) { return { html: html }; });
      })
      .catch(function () { return { problem: "unreachable" }; })
      .then(function (outcome) {
        if (timer) { clearTimeout(timer); }
        self.inFlight = false;
        if (outcome.problem) {
          self.failed(outcome);
          return;
        }
        try {
          self.apply(outcome.html);
          self.succeeded();
        } catch (error) {
          self.failed({ problem: "status", status: "unreadable answer" });
        }
      });
  };

  IncidentList.prototype.succeeded = function () {
    this.lastSuccess = new Date();
    this.status.textContent = "Updated " + timeText(this.lastSuccess);
    this.status.classList.remove("stale");
    this.problem.hidden = true;
    this.problem.textContent = "";
    this.problem.dataset.kind = "";
  };

  IncidentList.prototype.failed = function (outcome) {
    var here = window.location.pathname + window.location.search;
    var login = this.loginUrl + "?next=" + encodeURIComponent(here);
    var message;
    if (outcome.problem === "session") {
      message = "Your session has ended, so this list is no longer updating. ";
    } else if (outcome.problem === "unreachable") {
      message = "The server cannot be reached, so this list is no longer updating. Retrying every " +
        (REFRESH_MS / 1000) + " s. ";
    } else {
      message = "Refreshing the list failed (" + outcome.status + "), so it is no longer updating. " +
        "Retrying every " + (REFRESH_MS / 1000) + " s. ";
    }
    this.status.textContent = "Not live: last updated " + timeText(this.lastSuccess);
    this.status.classList.add("stale");
    if (this.problem.dataset.kind === outcome.problem && !this.problem.hidden) { return; }
    this.problem.dataset.kind = outcome.problem;
    this.problem.textContent = message;
    var link = document.createElement("a");
    link.href = login;
    link.textContent = outcome.problem === "session" ? "Log in again" : "Reload or log in again";
    this.problem.appendChild(link);
    this.problem.hidden = false;
  };

  // Update the rows in place: unchanged rows are left alone (focus, selection and
  // checkboxes stay), changed rows get new cells except their checkbox, new rows are
  // inserted and highlighted, gone rows are removed.
  IncidentList.prototype.apply = function (html) {
    var fresh = document.createElement("div");
    fresh.innerHTML = html;
    var freshRows = fresh.querySelector(".rows");
    var current = this.container.querySelector(".rows");
    if (!freshRows) { throw new Error("no rows in the answer"); }
    this.setTitle(freshRows);
    var freshBody = freshRows.querySelector("tbody");
    var body = current ? current.querySelector("tbody") : null;
    var announcements = [];
    if (!freshBody || !body) {
      // The empty state appears or goes: nothing in it to keep.
      if (freshBody) {
        rowsOf(freshRows).forEach(function (row) {
          row.classList.add("new");
          announcements.push("New incident: " + titleOf(row));
        });
      }
      this.container.replaceChildren(freshRows);
      this.announce(announcements);
      this.updateSelection();
      this.watchSeen();
      return;
    }
    var active = document.activeElement;
    var activeRow = active && active.closest ? active.closest("tr[data-incident-id]") : null;
    var activeIndex = -1;
    if (activeRow) {
      activeIndex = Array.prototype.indexOf.call(activeRow.querySelectorAll("a, button, input"), active);
    }
    var existing = {};
    rowsOf(body).forEach(function (row) { existing[row.dataset.incidentId] = row; });
    var wanted = rowsOf(freshBody);
    var keep = {};
    var self = this;
    wanted.forEach(function (freshRow, index) {
      var id = freshRow.dataset.incidentId;
      keep[id] = true;
      var row = existing[id];
      if (!row) {
        row = freshRow;
        row.classList.add("new");
        announcements.push("New incident: " + titleOf(freshRow));
      } else if (row.dataset.version !== freshRow.dataset.version) {
        if (row.dataset.status !== freshRow.dataset.status) {
          announcements.push(titleOf(freshRow) + " is now " + freshRow.dataset.status);
        }
        self.updateRow(row, freshRow);
      }
      var at = body.children[index];
      if (at !== row) { body.insertBefore(row, at || null); }
    });
    rowsOf(body).forEach(function (row) {
      if (!keep[row.dataset.incidentId]) { row.remove(); }
    });
    var pager = current.querySelector(".pager");
    var freshPager = freshRows.querySelector(".pager");
    if (pager && freshPager && pager.innerHTML !== freshPager.innerHTML) {
      pager.innerHTML = freshPager.innerHTML;
    }
    current.dataset.triggeredCount = freshRows.dataset.triggeredCount;
    // A row that had to move takes its focus along (moving a node drops focus).
    if (activeRow && document.activeElement !== active) {
      if (activeRow.isConnected) {
        var targets = activeRow.querySelectorAll("a, button, input");
        var target = targets[activeIndex] || targets[0];
        if (target) { target.focus({ preventScroll: true }); }
      } else {
        var first = body.querySelector(".incident-link");
        if (first) { first.focus({ preventScroll: true }); }
      }
    }
    this.announce(announcements);
    this.updateSelection();
    this.watchSeen();
  };

  IncidentList.prototype.updateRow = function (row, freshRow) {
    var cells = row.children;
    var freshCells = freshRow.children;
    for (var i = 0; i < freshCells.length; i++) {
      var cell = cells[i];
      if (!cell || cell.classList.contains("select")) { continue; }
      if (cell.innerHTML !== freshCells[i].innerHTML) { cell.innerHTML = freshCells[i].innerHTML; }
    }
    row.dataset.version = freshRow.dataset.version;
    row.dataset.status = freshRow.dataset.status;
    row.className = freshRow.className + (row.classList.contains("new") ? " new" : "");
  };

  IncidentList.prototype.announce = function (messages) {
    if (!messages.length) { return; }
    var text = messages.length > 3
      ? messages.length + " incidents are new or changed."
      : messages.join(". ") + ".";
    this.announcer.textContent = text;
  };

  // ------------------------------------------------------------ "new until seen"

  IncidentList.prototype.watchSeen = function () {
    var self = this;
    this.container.querySelectorAll("tr.new").forEach(function (row) {
      if (row.dataset.watched) { return; }
      row.dataset.watched = "1";
      var seen = function () { row.classList.remove("new"); };
      row.addEventListener("mouseenter", seen);
      row.addEventListener("focusin", seen);
    });
    if (!this.observer && window.IntersectionObserver) {
      this.observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          var id = entry.target.dataset.incidentId;
          if (entry.isIntersecting) { self.visibleSince[id] = Date.now(); } else { delete self.visibleSince[id]; }
        });
      });
    }
    if (this.observer) {
      this.container.querySelectorAll("tr.new").forEach(function (row) { self.observer.observe(row); });
    }
  };

  IncidentList.prototype.tickSeen = function () {
    if (document.hidden) {
      this.visibleSince = {};
      return;
    }
    var now = Date.now();
    var self = this;
    this.container.querySelectorAll("tr.new").forEach(function (row) {
      var since = self.visibleSince[row.dataset.incidentId];
      if (since === undefined && self.observer) { return; }
      if (since === undefined) { since = self.visibleSince[row.dataset.incidentId] = now; }
      if (now - since >= self.seenAfterMs) {
        row.classList.remove("new");
        if (self.observer) { self.observer.unobserve(row); }
      }
    });
  };

  // ------------------------------------------------------------ selection and actions

  IncidentList.prototype.watchSelection = function () {
    var self = this;
    this.container.addEventListener("change", function (event) {
      if (event.target.classList.contains("select-all")) {
        self.container.querySelectorAll("tbody input[name=ids]").forEach(function (box) {
          box.checked = event.target.checked;
        });
      }
      self.updateSelection();
    });
    this.updateSelection();
  };

  IncidentList.prototype.selected = function () {
    return Array.prototype.slice.call(this.container.querySelectorAll("tbody input[name=ids]:checked"));
  };

  IncidentList.prototype.updateSelection = function () {
    var count = this.selected().length;
    if (this.selectedCount) {
      this.selectedCount.textContent = count === 0 ? "None selected" : count + " selected";
    }
    this.container.querySelectorAll("tr[data-incident-id]").forEach(function (row) {
      var box = row.querySelector("input[name=ids]");
      row.classList.toggle("selected", !!(box && box.checked));
    });
    var all = this.container.querySelector(".select-all");
    if (all) {
      var boxes = this.container.querySelectorAll("tbody input[name=ids]");
      all.checked = boxes.length > 0 && count === boxes.length;
      all.indeterminate = count > 0 && count < boxes.length;
    }
  };

  IncidentList.prototype.currentRow = function () {
    var active = document.activeElement;
    return active && active.closest ? active.closest("#incident-rows tr[data-incident-id]") : null;
  };

  IncidentList.prototype.move = function (step) {
    var rows = rowsOf(this.container);
    if (!rows.length) { return; }
    var index = rows.indexOf(this.currentRow());
    var next = index === -1 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, index + step));
    var link = rows[next].querySelector(".incident-link");
    if (link) {
      link.focus();
      rows[next].scrollIntoView({ block: "nearest" });
    }
  };

  IncidentList.prototype.toggleCurrent = function () {
    var row = this.currentRow();
    var box = row ? row.querySelector("input[name=ids]") : null;
    if (box) {
      box.checked = !box.checked;
      this.updateSelection();
    }
  };

  IncidentList.prototype.act = function (action) {
    if (!this.form) { return; }
    var selected = this.selected();
    if (!selected.length) {
      var row = this.currentRow();
      if (!row) { return; }
      var rowButton = row.querySelector("button[name=row_action][value^='" + action + ":']");
      if (rowButton) { this.form.requestSubmit(rowButton); }
      return;
    }
    var button = this.form.querySelector("button[name=action][value=" + action + "]");
    if (button) { this.form.requestSubmit(button); }
  };

  // ------------------------------------------------------------ page-wide wiring

  function setUpShortcuts(list) {
    var help = document.getElementById("shortcuts");
    var helpButton = document.getElementById("shortcuts-button");
    var search = document.querySelector(".filters input[type=search]");
    function toggleHelp(show) {
      if (!help) { return; }
      var open = show === undefined ? help.hidden : show;
      help.hidden = !open;
      if (helpButton) { helpButton.setAttribute("aria-expanded", open ? "true" : "false"); }
    }
    if (helpButton) { helpButton.addEventListener("click", function () { toggleHelp(); }); }
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        if (isTyping(event.target)) { event.target.blur(); }
        toggleHelp(false);
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
      if (isTyping(event.target)) { return; }
      switch (event.key) {
        case "j": list.move(1); break;
        case "k": list.move(-1); break;
        case "x": list.toggleCurrent(); break;
        case "a": list.act("acknowledge"); break;
        case "r": list.act("resolve"); break;
        case "?": toggleHelp(); break;
        case "/":
          if (!search) { return; }
          openFilters(true);
          search.focus();
          search.select();
          break;
        default: return;
      }
      event.preventDefault();
    });
  }

  function openFilters(open) {
    var toggle = document.querySelector(".filters-toggle");
    var filters = document.getElementById("filters");
    if (!toggle || !filters) { return; }
    filters.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function setUpFilters() {
    var toggle = document.querySelector(".filters-toggle");
    if (!toggle) { return; }
    document.documentElement.classList.add("js-filters");
    toggle.addEventListener("click", function () {
      openFilters(toggle.getAttribute("aria-expanded") !== "true");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("incident-rows");
    if (container) {
      var list = new IncidentList(container);
      window.bridgeIncidentList = list;  // for the browser tests
      setUpShortcuts(list);
      setUpFilters();
      setInterval(function () {
        if (!document.hidden) { list.refresh(); }
      }, REFRESH_MS);
      setInterval(function () { list.tickSeen(); }, 1000);
      document.addEventListener("visibilitychange", function () {
        if (!document.hidden) { list.refresh(); }
      });
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
