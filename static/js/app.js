// OpenCS: small behaviours on top of htmx. No inline scripts; loaded with `defer` from base.html.
"use strict";

(function () {
  function mb(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  // Upload progress on the data-import form: htmx fires htmx:xhr:progress on the form while
  // the browser sends the files (xhr.upload), then once more for the (tiny) response.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest("#upload-form");
    if (!form || !event.detail.lengthComputable || !event.detail.total) return;
    var box = document.getElementById("upload-form-progress");
    if (!box) return;
    var bar = box.querySelector("progress");
    var label = box.querySelector("p");
    var percent = Math.round((100 * event.detail.loaded) / event.detail.total);
    box.hidden = false;
    bar.value = percent;
    label.textContent =
      percent < 100
        ? "Uploading… " + percent + "% (" + mb(event.detail.loaded) + " of " + mb(event.detail.total) + ")"
        : "Uploaded. Checking the rows…";
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.id !== "upload-form") return;
    var box = document.getElementById("upload-form-progress");
    if (box) {
      box.hidden = false;
      box.querySelector("progress").removeAttribute("value"); // indeterminate until bytes move
      box.querySelector("p").textContent = "Uploading…";
    }
  });

  // --- charts (Chart.js, vendored in static/js/vendor; only on pages that load it) -----------
  // A <canvas data-chart="kind" data-source="json-script-id"> gets a chart of that kind.
  var css = getComputedStyle(document.documentElement);
  function color(name, fallback) {
    return (css.getPropertyValue(name) || fallback).trim();
  }
  var ACCENT = color("--accent", "#2b56b3");
  var MUTED = color("--muted", "#586273");
  var OK = color("--ok-fg", "#1b6431");
  var BAD = color("--bad-fg", "#a1271f");
  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function base(extra) {
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: still ? false : { duration: 300 },
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false } },
      scales: { x: { ticks: { maxTicksLimit: 8, color: MUTED }, grid: { display: false } }, y: { ticks: { color: MUTED } } }
    };
    return Object.assign(options, extra || {});
  }

  // the sign of the installation's currency (settings.CURRENCY), set on <body> by the pages
  function sign() {
    return (document.body && document.body.getAttribute("data-currency-sign")) || "$";
  }

  function money(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return sign() + (v / 1e6).toFixed(a >= 1e7 ? 1 : 2) + "M";
    if (a >= 1e3) return sign() + Math.round(v / 1e3) + "k";
    return sign() + Math.round(v);
  }

  // A step of 1, 2 or 5 times a power of ten, at least `rough`
  function niceStep(rough) {
    if (!(rough > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(rough)));
    var f = rough / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  // An axis tick in money: one unit for the whole axis, chosen by the distance between ticks
  // rather than by the size of the values, so ticks never need more than one decimal: a step
  // of $1k on an axis near $1.79M reads "$1,789k", "$1,790k" (not "$1.7888M", "$1.7890M"),
  // a step of $0.5M "$1.5M", "$2.0M"
  function moneyTick(v, index, ticks) {
    var values = (ticks || []).map(function (t) { return t.value; });
    var step = 0;
    for (var i = 1; i < values.length; i++) step = Math.max(step, Math.abs(values[i] - values[i - 1]));
    var top = Math.max.apply(null, values.concat([v]).map(Math.abs));
    var unit = step >= 1e5 ? 1e6 : step >= 1e3 || top >= 1e5 ? 1e3 : 1;
    if (!step) unit = top >= 1e6 ? 1e6 : top >= 1e3 ? 1e3 : 1;
    var scaled = step / unit;
    var digits = !step || Math.abs(scaled - Math.round(scaled)) < 1e-9 ? 0 : 1;
    var text = (v / unit).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    return sign() + text + (unit === 1e6 ? "M" : unit === 1e3 ? "k" : "");
  }

  // Dates as the pages write them: "24 Nov 2026"; an axis tick leaves out the year ("24 Nov"),
  // a monthly axis the day ("Nov 2026"). The series carry ISO days ("2026-11-24"), read as UTC.
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function isoParts(iso) {
    var p = String(iso).split("-");
    return { y: p[0], m: MONTHS[parseInt(p[1], 10) - 1], d: String(parseInt(p[2], 10)) };
  }
  function dayLabel(iso) { var p = isoParts(iso); return p.m ? p.d + " " + p.m + " " + p.y : String(iso); }
  function dayTick(iso) { var p = isoParts(iso); return p.m ? p.d + " " + p.m : String(iso); }
  // a monthly series' ticks: "Nov 2026" for the first of a month, the full day otherwise (today)
  function monthTick(iso) { var p = isoParts(iso); return p.m && p.d === "1" ? p.m + " " + p.y : dayLabel(iso); }
  // x axis ticks and tooltip titles of a chart whose labels are ISO days
  function dayAxis(o, tick, title) {
    o.scales.x.ticks.callback = function (value) { return tick(this.getLabelForValue(value)); };
    o.plugins.tooltip = { callbacks: { title: function (items) { return items.length ? title(items[0].label) : ""; } } };
    return o;
  }
  // one row per calendar day from the first row's day to the last one's: a day without a row
  // gets blank(day), so the axis counts days, not rows
  function everyDay(rows, blank) {
    if (!rows.length) return rows;
    var byDay = {};
    rows.forEach(function (r) { byDay[r.day] = r; });
    var out = [];
    var day = new Date(rows[0].day + "T00:00:00Z");
    var last = new Date(rows[rows.length - 1].day + "T00:00:00Z");
    for (; day <= last; day.setUTCDate(day.getUTCDate() + 1)) {
      var iso = day.toISOString().slice(0, 10);
      out.push(byDay[iso] || blank(iso));
    }
    return out;
  }

  // the model version of a health row: "Default v2"
  function versionLabel(r) { return r.model + " v" + r.version; }
  // where the model version changes along a health series (rows with a version; gap rows
  // have none): [{index, text: "v2 from 25 Oct"}], the model named when it changes too
  function versionChanges(rows) {
    var out = [];
    var last = null;
    rows.forEach(function (r, i) {
      if (!r.version) return;
      if (last && (r.model !== last.model || r.version !== last.version)) {
        out.push({ index: i, text: (r.model === last.model ? "v" + r.version : versionLabel(r)) + " from " + dayTick(r.day) });
      }
      last = r;
    });
    return out;
  }
  // a Chart.js plugin of one chart: a dashed vertical line and its text at each change
  function versionLines(changes) {
    return {
      id: "versionLines",
      afterDatasetsDraw: function (chart) {
        if (!changes.length) return;
        var area = chart.chartArea;
        var x = chart.scales.x;
        var ctx = chart.ctx;
        ctx.save();
        ctx.strokeStyle = MUTED;
        ctx.fillStyle = MUTED;
        ctx.setLineDash([4, 4]);
        ctx.lineWidth = 1;
        ctx.font = "12px sans-serif";
        changes.forEach(function (c) {
          var px = x.getPixelForValue(c.index);
          ctx.beginPath();
          ctx.moveTo(px, area.top);
          ctx.lineTo(px, area.bottom);
          ctx.stroke();
          var width = ctx.measureText(c.text).width;
          // the text right of the line, or left of it near the right edge
          ctx.fillText(c.text, px + 4 + width > area.right ? px - 4 - width : px + 4, area.top + 12);
        });
        ctx.restore();
      }
    };
  }

  var builders = {
    // rows: {day, score, model, version}; each point's tooltip names the model version that
    // scored it, and a dashed line with "v2 from 25 Oct" marks where the version changes (a
    // new version scores the same data differently: no movement of the customer)
    health: function (rows) {
      rows = everyDay(rows, function (day) { return { day: day, score: null }; });
      var o = dayAxis(base(), dayTick, dayLabel);
      o.scales.y.min = 0;
      o.scales.y.max = 100;
      var changes = versionChanges(rows);
      var at = {};
      changes.forEach(function (c) { at[c.index] = true; });
      o.plugins.tooltip.callbacks.label = function (ctx) {
        var r = rows[ctx.dataIndex];
        return "Health score: " + ctx.formattedValue + (r.version ? " (" + versionLabel(r) + ")" : "");
      };
      return {
        type: "line",
        data: { labels: rows.map(function (r) { return r.day; }), datasets: [
          { label: "Health score", data: rows.map(function (r) { return r.score; }), borderColor: ACCENT, backgroundColor: ACCENT, borderWidth: 2, spanGaps: true,
            pointRadius: rows.map(function (r, i) { return at[i] ? 4 : 0; }), pointStyle: "rectRot" }
        ] },
        options: o,
        plugins: [versionLines(changes)]
      };
    },
    users: function (rows, canvas) {
      var seats = parseFloat(canvas.dataset.seats);
      var sets = [{ label: "Active users", data: rows.map(function (r) { return r.active_users; }), borderColor: ACCENT, backgroundColor: ACCENT, pointRadius: 0, borderWidth: 2 }];
      if (!isNaN(seats)) sets.push({ label: "Licensed seats", data: rows.map(function () { return seats; }), borderColor: MUTED, borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5 });
      var o = dayAxis(base(), dayTick, dayLabel);
      o.plugins.legend = { display: true, labels: { boxWidth: 12, color: MUTED } };
      o.scales.y.beginAtZero = true;
      return { type: "line", data: { labels: rows.map(function (r) { return r.day; }), datasets: sets }, options: o };
    },
    events: function (rows) {
      var o = dayAxis(base(), dayTick, dayLabel);
      // named as the users chart above it names its lines: bars without a key read as users
      o.plugins.legend = { display: true, labels: { boxWidth: 12, color: MUTED } };
      o.scales.y.beginAtZero = true;
      return { type: "bar", data: { labels: rows.map(function (r) { return r.day; }), datasets: [
        { label: "Events a day", data: rows.map(function (r) { return r.events; }), backgroundColor: "rgba(43, 86, 179, 0.55)" }
      ] }, options: o };
    },
    mrr: function (rows) {
      var o = dayAxis(base(), monthTick, dayLabel);
      o.scales.y.beginAtZero = true;
      o.scales.y.ticks.callback = moneyTick;
      return { type: "line", data: { labels: rows.map(function (r) { return r.day; }), datasets: [
        { label: "MRR", data: rows.map(function (r) { return parseFloat(r.mrr); }), borderColor: ACCENT, backgroundColor: "rgba(43, 86, 179, 0.12)", fill: true, stepped: true, pointRadius: 0, borderWidth: 2 }
      ] }, options: o };
    },
    waterfall: function (steps) {
      var running = 0;
      var bars = steps.map(function (s) {
        var amount = s.amount || 0;
        if (s.kind === "total") { running = amount; return [0, amount]; }
        var from = running;
        running += amount;
        return [from, running];
      });
      var colours = steps.map(function (s) {
        if (s.kind === "total") return MUTED;
        return s.amount < 0 ? BAD : OK;
      });
      var o = base();
      o.scales.y.ticks.callback = moneyTick;
      // start near the smallest level so the movements are visible next to the totals
      var levels = [];
      bars.forEach(function (b) { levels.push(b[1]); if (b[0] !== 0) levels.push(b[0]); });
      var low = Math.min.apply(null, levels);
      var high = Math.max.apply(null, levels);
      if (low > 0 && high > low) {
        // about five ticks a round step apart, the axis' foot on a tick below the lowest
        // level (with room for the movements to show next to the totals)
        var step = niceStep((high - low) * 1.6 / 5);
        o.scales.y.min = Math.max(0, Math.floor((low - (high - low) * 0.6) / step) * step);
        o.scales.y.ticks.stepSize = step;
      }
      // an axis that does not start at zero says so: the totals' bars are cut at its foot
      if (o.scales.y.min > 0) {
        o.scales.y.title = { display: true, color: MUTED, text: "axis starts at " + money(o.scales.y.min) + ", not 0" };
      }
      o.plugins.tooltip = { callbacks: { label: function (ctx) { var s = steps[ctx.dataIndex]; return s.label + ": " + money(s.amount || 0); } } };
      o.onClick = function (event, elements) {
        if (elements.length) window.location.href = steps[elements[0].index].url;
      };
      return { type: "bar", data: { labels: steps.map(function (s) { return s.label; }), datasets: [
        { label: "MRR", data: bars, backgroundColor: colours, borderSkipped: false }
      ] }, options: o };
    }
  };

  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var build = builders[canvas.dataset.chart];
      var source = document.getElementById(canvas.dataset.source);
      if (!build || !source) return;
      var existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
      new window.Chart(canvas, build(JSON.parse(source.textContent), canvas));
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  } else {
    drawCharts(document);
  }
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });

  // --- how a number was computed ({% explain %}, accounts/templatetags/explain.py) ---------
  // The browser opens and closes the note (a native popover: tap, click, Enter, Space,
  // Escape, a tap elsewhere); this only puts it under its button (above when there is no
  // room below) instead of the middle of the screen, and keeps it there while the page
  // scrolls or shifts (a chart drawn late). "beforetoggle" places it before it shows, its
  // size unknown yet, "toggle" once more with its size. Neither bubbles, so both are heard
  // in the capture phase; that also covers notes htmx swaps in later.
  function placeNote(note) {
    var button = document.querySelector('[popovertarget="' + note.id + '"]');
    if (!button) return;
    note.classList.add("is-placed");
    var box = button.getBoundingClientRect();
    var page = document.documentElement.clientWidth;
    var height = document.documentElement.clientHeight;
    note.style.left = Math.max(8, Math.min(box.left, page - note.offsetWidth - 8)) + "px";
    var below = box.bottom + 6;
    var roomy = below + note.offsetHeight <= height - 8;
    note.style.top = (roomy ? below : Math.max(8, box.top - 6 - note.offsetHeight)) + "px";
  }
  function onToggle(event) {
    var note = event.target;
    if (event.newState !== "open" || !note.classList || !note.classList.contains("explain-note")) return;
    placeNote(note);
  }
  document.addEventListener("beforetoggle", onToggle, true);
  document.addEventListener("toggle", onToggle, true);
  function placeOpenNotes() {
    document.querySelectorAll(".explain-note.is-placed").forEach(function (note) {
      if (note.matches(":popover-open")) placeNote(note);
    });
  }
  document.addEventListener("scroll", placeOpenNotes, { capture: true, passive: true });
  window.addEventListener("resize", placeOpenNotes);

  // --- after an inline CTA action ------------------------------------------------------
  // The playbooks app's row buttons send "ctaChanged" {account_id}. The account's queue
  // standing (its priority and reason) is recomputed on the server, then "standingChanged"
  // lets the queue re-read its page in place.
  document.body.addEventListener("ctaChanged", function (event) {
    var detail = event.detail || {};
    var accountId = detail.account_id || (detail.value && detail.value.account_id);
    if (!accountId || !document.querySelector("[data-standing-url]")) return;
    var template = document.querySelector("[data-standing-url]").dataset.standingUrl;
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    fetch(template.replace("0", String(accountId)), {
      method: "POST",
      headers: headers,
      credentials: "same-origin"
    }).then(function (response) {
      if (response.ok && window.htmx) window.htmx.trigger(document.body, "standingChanged", {});
    });
  });

  // --- what an action did, said once (#announcer in base.html) -----------------------------
  // A view sends "announced" {message} (config/announce.py) with its htmx answer; the text
  // goes into the page's one polite live region, which sits outside every swapped part, so
  // a fragment re-read a moment later (the queue after a CTA action) cannot take it away.
  // The region is emptied first and filled a moment later: the same words twice in a row
  // ("Saved.") are read twice. A page loaded after a plain form post says its messages too.
  var announceTimer = null;
  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region || !text) return;
    region.textContent = "";
    window.clearTimeout(announceTimer);
    announceTimer = window.setTimeout(function () { region.textContent = text; }, 150);
  }
  document.addEventListener("announced", function (event) {
    var detail = event.detail || {};
    announce(detail.message || (detail.value && detail.value.message));
  });
  var loadMessages = Array.prototype.map.call(document.querySelectorAll(".messages .msg"), function (m) {
    return m.textContent.trim();
  }).join(" ");
  if (loadMessages) announce(loadMessages);

  // --- the health model editor's preview follows what is typed ------------------------------
  // Each input in the draft (#draft-form) tells the page, and #preview asks for the draft's
  // preview 600 ms after the last one (hx-trigger="healthDraftEdited delay:600ms from:body").
  // The trigger is not the form's own: htmx sends a form's request as if by the submit button
  // that has the focus, so a preview falling due while the focus was on "Remove component"
  // was sent as that button (to its formaction, with its op) and removed the component.
  document.addEventListener("input", function (event) {
    if (!window.htmx || !event.target.closest || !event.target.closest("#draft-form")) return;
    window.htmx.trigger(document.body, "healthDraftEdited", {});
  });

  // --- a question asked before an action (<dialog data-confirm>, the CTA page's "Close this
  // CTA with open steps?") ---------------------------------------------------------------------
  // The server sends it open in the page's flow, its heading marked autofocus (read out as
  // the dialog's name and description). Here it becomes modal: the page behind is inert and
  // Escape closes it, as does its "Keep it open" link (data-dialog-close; without script a
  // link back to the page). Closed, it gives the focus back to the control that asked the
  // question (data-opener: the page was loaded again, so the browser knows of no earlier
  // focus) and the address becomes the link's, so that reloading does not send the form again.
  document.querySelectorAll("dialog[data-confirm][open]").forEach(function (dialog) {
    var keep = dialog.querySelector("[data-dialog-close]");
    dialog.removeAttribute("open"); // showModal refuses a dialog that is open already
    dialog.showModal();
    var heading = dialog.querySelector("[autofocus]");
    if (heading) heading.focus();
    dialog.addEventListener("close", function () {
      if (keep && window.history.replaceState) window.history.replaceState(null, "", keep.href);
      var opener = document.getElementById(dialog.dataset.opener);
      if (opener) opener.focus();
    });
    if (keep) {
      keep.addEventListener("click", function (event) {
        event.preventDefault();
        dialog.close();
      });
    }
  });

  // --- a key shown once (Manage → API tokens) ---------------------------------------------
  // <button data-copy="#input-id" hidden> copies that input's value; without the Clipboard
  // API (plain http) the button stays hidden and the hint says to select and copy.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var input = document.querySelector(button.dataset.copy);
    if (!input || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(function () {
        button.textContent = "Copied";
      });
    });
  });

  // --- a submit that takes a while (saving a health model and rescoring past days) -----------
  // <button data-busy="Saving…" data-busy-days="#days-input" data-busy-rescore="… {n} days…">:
  // once its form is sent, the button says what is happening and a second click sends
  // nothing (with tasks run inline the response comes only when the rescoring is done). The
  // button is not disabled: a disabled submitter would drop its name=value from the form.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !button.hasAttribute("data-busy")) return;
    var form = event.target;
    if (form.dataset.busySent) {
      event.preventDefault();
      return;
    }
    form.dataset.busySent = "1";
    var input = button.dataset.busyDays && document.querySelector(button.dataset.busyDays);
    var days = input ? parseInt(input.value, 10) : 0;
    button.dataset.busyLabel = button.textContent;
    button.textContent = days > 0 && button.dataset.busyRescore
      ? button.dataset.busyRescore.replace("{n} days", days === 1 ? "1 day" : days + " days")
      : button.dataset.busy;
    button.setAttribute("aria-disabled", "true");
  });
  // back to the page from the browser's cache: the button is ready again
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-busy-sent]").forEach(function (form) {
      delete form.dataset.busySent;
      form.querySelectorAll("[data-busy-label]").forEach(function (button) {
        button.textContent = button.dataset.busyLabel;
        button.removeAttribute("aria-disabled");
      });
    });
  });

  // --- the focus after a form with errors or an htmx swap --------------------------------
  // A form's error summary (_form_errors.html) takes the focus when the page or the swapped
  // fragment shows it, so a keyboard user starts from the list of what to fix (its links go
  // to the fields). An htmx swap that replaces the element holding the focus (a CTA row's
  // button, then the queue re-reading itself) would drop the focus to <body>, the top of the
  // page. htmx keeps it only on an element with an id; otherwise it goes back to the nearest
  // part with an id that is still there (the CTA's row, else its account's row, else the
  // swapped fragment): to its error (role alert), else its first control in view, else the
  // <summary> of the closed <details> it is folded in (a form sent, then shut), else the
  // part itself. Not to a message that confirms: #announcer says it, and the queue
  // re-reading itself would wipe it.
  var CONTROLS = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), summary";
  // true when the element took the focus (one hidden, in a closed <details> say, does not)
  function focusTo(element) {
    if (!element) return false;
    if (!element.matches(CONTROLS + ", [tabindex]")) element.setAttribute("tabindex", "-1");
    element.focus();
    return document.activeElement === element;
  }
  // the <summary> of the closed <details> a part is folded in (the control that opened it)
  function foldedSummary(part) {
    var folded = part.closest("details:not([open])");
    return folded && folded.querySelector("summary");
  }
  function firstShownControl(part) {
    return Array.prototype.find.call(part.querySelectorAll(CONTROLS), function (control) {
      return control.getClientRects().length > 0;
    });
  }
  function focusErrorSummary(root) {
    var summary = root.querySelector("[data-error-summary]:not([data-focused])");
    if (!summary) return false;
    summary.setAttribute("data-focused", "");
    focusTo(summary);
    return true;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { focusErrorSummary(document); });
  } else {
    focusErrorSummary(document);
  }
  var focusedParts = []; // ids of the focused element's ancestors inside the swapped element
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var active = document.activeElement;
    focusedParts = [];
    if (!target || !active || active === document.body || !target.contains(active)) return;
    for (var node = active; node && node !== target.parentElement; node = node.parentElement) {
      if (node.id) focusedParts.push(node.id);
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    var ids = focusedParts;
    focusedParts = [];
    if (focusErrorSummary(document)) return;
    var active = document.activeElement;
    if (!ids.length || (active && active !== document.body && document.contains(active))) return;
    for (var i = 0; i < ids.length; i++) {
      var part = document.getElementById(ids[i]);
      if (!part) continue;
      var to = [part.querySelector('[role="alert"]'), firstShownControl(part), foldedSummary(part), part];
      if (to.some(focusTo)) return;
    }
  });

  // --- a table of numbers to explore cell by cell (the cohort heat map) ---------------------
  // <table data-grid> whose data cells hold {% explain %} buttons is one tab stop instead of
  // one per cell: Tab lands on the last cell visited (the first at first), the arrow keys
  // move between cells (Home/End: the row's first/last, Ctrl+Home/End: the table's), Enter
  // or Space opens the cell's explanation (the button's own popover) and Escape closes it.
  // Without script every button stays a tab stop.
  function gridButtons(grid) {
    return Array.prototype.map.call(grid.querySelectorAll("tbody tr"), function (row) {
      return Array.prototype.map.call(row.children, function (cell) {
        return cell.querySelector("button[popovertarget]");
      });
    });
  }
  function setUpGrids(root) {
    (root || document).querySelectorAll("table[data-grid]").forEach(function (grid) {
      grid.setAttribute("role", "grid"); // screen readers pass the arrow keys to a grid
      var all = grid.querySelectorAll("tbody button[popovertarget]");
      var current = grid.querySelector('tbody button[popovertarget][tabindex="0"]') || all[0];
      all.forEach(function (button) { button.setAttribute("tabindex", button === current ? "0" : "-1"); });
    });
  }
  function gridMove(grid, from, to) {
    if (!to || to === from) return;
    var open = grid.querySelector(".explain-note:popover-open");
    if (open) open.hidePopover();
    from.setAttribute("tabindex", "-1");
    to.setAttribute("tabindex", "0");
    to.focus();
  }
  document.addEventListener("keydown", function (event) {
    var button = event.target;
    var grid = button.closest && button.closest("table[data-grid]");
    if (!grid || !button.matches("button[popovertarget]") || event.altKey || event.metaKey) return;
    var rows = gridButtons(grid);
    var r = -1, c = -1;
    rows.forEach(function (row, i) { var j = row.indexOf(button); if (j >= 0) { r = i; c = j; } });
    if (r < 0) return;
    function first(row) { return row.find(function (b) { return b; }); }
    function last(row) { return row.slice().reverse().find(function (b) { return b; }); }
    var cells = [].concat.apply([], rows).filter(function (b) { return b; });
    function step(dr, dc) {
      for (var i = r + dr, j = c + dc; i >= 0 && i < rows.length && j >= 0 && j < rows[i].length; i += dr, j += dc) {
        if (rows[i][j]) return rows[i][j];
        if (dr) return null; // no cell below or above (the triangle's edge): stay
      }
      return null;
    }
    var to;
    switch (event.key) {
      case "ArrowRight": to = step(0, 1); break;
      case "ArrowLeft": to = step(0, -1); break;
      case "ArrowDown": to = step(1, 0); break;
      case "ArrowUp": to = step(-1, 0); break;
      case "Home": to = event.ctrlKey ? cells[0] : first(rows[r]); break;
      case "End": to = event.ctrlKey ? cells[cells.length - 1] : last(rows[r]); break;
      default: return;
    }
    event.preventDefault(); // the page does not scroll under the grid
    gridMove(grid, button, to);
  });
  setUpGrids(document);
  document.addEventListener("htmx:afterSettle", function () { setUpGrids(document); });

  // --- tables wider than the screen (.table-wrap scrolls sideways) --------------------------
  // A keyboard user can scroll a box only once it has the focus: a wrapper that scrolls gets
  // tabindex=0 and is a region named after its table (caption or section heading), so Tab
  // lands on it and the arrow keys move the table. A wrapper that fits is left alone (no
  // empty tab stop).
  function markScrollableTables(root) {
    (root || document).querySelectorAll(".table-wrap").forEach(function (wrap) {
      // a grid (table[data-grid]) is a tab stop already, and moving in it scrolls the box
      if (wrap.scrollWidth > wrap.clientWidth + 1 && !wrap.querySelector("table[data-grid]")) {
        if (wrap.hasAttribute("tabindex")) return;
        // its name: the table's caption, else the heading of the section it sits in
        var caption = wrap.querySelector("caption");
        var section = wrap.closest("[aria-labelledby]");
        var heading = section && document.getElementById(section.getAttribute("aria-labelledby"));
        var name = (caption || heading) && (caption || heading).textContent.trim();
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", (name ? name + ": " : "") + "table, scrolls sideways");
        wrap.dataset.scrollMarked = "1";
      } else if (wrap.dataset.scrollMarked) {
        ["tabindex", "role", "aria-label", "data-scroll-marked"].forEach(function (attribute) {
          wrap.removeAttribute(attribute);
        });
      }
    });
  }
  markScrollableTables(document);
  document.addEventListener("htmx:afterSettle", function () {
    markScrollableTables(document);
  });
  var resizeQueued = false;
  window.addEventListener("resize", function () {
    if (resizeQueued) return;
    resizeQueued = true;
    window.requestAnimationFrame(function () {
      resizeQueued = false;
      markScrollableTables(document);
    });
  });
})();
