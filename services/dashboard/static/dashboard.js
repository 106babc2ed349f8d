/* Liaison analysts' dashboard: sortable tables and live updates (Server-Sent Events).
 *
 * No framework, no build step, no inline script (the CSP allows only this file). Pages say
 * what to do through data attributes on <main>: data-page ("overview" or "feed") and
 * data-stream (the EventSource URL the server built from the page's own filters). Every
 * message was recorded in the audit log by the server before it was sent. Text from the
 * server is only ever set with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";

  function clock() {
    var now = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(now.getHours()) + ":" + two(now.getMinutes()) + ":" + two(now.getSeconds());
  }

  function say(text) {
    var status = document.getElementById("live-status");
    if (status) { status.textContent = text; }
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  /* -- sortable tables ------------------------------------------------------------------ */

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var value = cell.getAttribute("data-value");
    return value === null ? cell.textContent.trim() : value;
  }

  function sortBy(table, index, kind, direction) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = direction === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index);
      var order = kind === "number"
        ? (parseFloat(x) || 0) - (parseFloat(y) || 0)
        : x.localeCompare(y, "en-GB", { sensitivity: "base" });
      return sign * order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (th.hasAttribute("aria-sort")) {
        th.setAttribute("aria-sort", i === index ? direction : "none");
      }
    });
    table.setAttribute("data-sorted", index + ":" + kind + ":" + direction);
  }

  function resort(table) {
    var sorted = table.getAttribute("data-sorted");
    if (!sorted) { return; }
    var parts = sorted.split(":");
    sortBy(table, parseInt(parts[0], 10), parts[1], parts[2]);
  }

  function sortable(table) {
    Array.prototype.forEach.call(table.querySelectorAll("thead th button"), function (button) {
      button.addEventListener("click", function () {
        var th = button.closest("th");
        var index = Array.prototype.indexOf.call(th.parentNode.cells, th);
        var kind = button.getAttribute("data-sort") || "text";
        var now = th.getAttribute("aria-sort");
        var first = kind === "number" ? "descending" : "ascending";
        var direction = now === first ? (first === "ascending" ? "descending" : "ascending") : first;
        sortBy(table, index, kind, direction);
        say("Sorted by " + button.textContent.trim() + ", " + direction + ".");
      });
    });
  }

  /* -- live streams ----------------------------------------------------------------------- */

  function listen(url, handlers) {
    if (!url || typeof window.EventSource === "undefined") { return; }
    var source = new EventSource(url);
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (message) {
        var data;
        try { data = JSON.parse(message.data); } catch (e) { return; }
        handlers[name](data);
      });
    });
    function stopped(message) {
      return function (event) {
        var data = {};
        try { data = JSON.parse(event.data); } catch (e) { /* a plain notice */ }
        source.close();
        say((data && data.error ? String(data.error).replace(/\.$/, "") + ". " : "") + message);
      };
    }
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        say("Live updates stopped. Reload the page to start them again.");
      }
    });
    source.addEventListener("stopped", stopped("Live updates stopped; nothing more was shown."));
    source.addEventListener("signed-out", stopped("Sign in again to see new findings."));
    return source;
  }

  /* -- overview: tiles and the table follow the totals ------------------------------------ */

  function concerns(n) { return plural(n, "concern", "concerns"); }

  function tileTitle(t, windowLabel) {
    return t.name + " (" + t.code + "): " + concerns(t.total) + " in " + windowLabel +
      "; gravest severity " + (t.max_severity ? String(t.max_severity) : "none") +
      "; JTAI: " + (t.jtai || "none");
  }

  function updateTile(tile, t, windowLabel) {
    tile.setAttribute("data-total", String(t.total));
    tile.setAttribute("data-jtai", t.jtai);
    tile.setAttribute("class", "tile sev-" + t.max_severity);
    var count = tile.querySelector(".tile-count");
    if (count) { count.textContent = String(t.total); }
    var title = tile.querySelector("title");
    if (title) { title.textContent = tileTitle(t, windowLabel); }
    var marker = tile.querySelector("circle.jtai-considered, circle.jtai-selected");
    if (marker && marker.getAttribute("class") !== "jtai-" + t.jtai) {
      marker.parentNode.removeChild(marker);
      marker = null;
    }
    var rect = tile.querySelector("rect");
    if (t.jtai && !marker && rect) {
      marker = document.createElementNS(SVG_NS, "circle");
      marker.setAttribute("class", "jtai-" + t.jtai);
      marker.setAttribute("cx", String(parseFloat(rect.getAttribute("x")) + 31));
      marker.setAttribute("cy", String(parseFloat(rect.getAttribute("y")) + 5));
      marker.setAttribute("r", "3.5");
      tile.appendChild(marker);
    }
  }

  function setCell(row, name, value, text) {
    var cell = row.querySelector("." + name);
    if (!cell) { return; }
    cell.setAttribute("data-value", String(value));
    cell.textContent = text;
  }

  var JTAI = { "": "None", considered: "Considered", selected: "Selected" };

  function overview(main) {
    var table = document.getElementById("area-table");
    var windowLabel = main.getAttribute("data-window-label") || "the window";
    var shown = null;
    listen(main.getAttribute("data-stream"), {
      totals: function (totals) {
        var sum = 0;
        totals.forEach(function (t) {
          sum += t.total;
          var tile = document.querySelector('#tile-map g.tile[data-area="' + t.code + '"]');
          if (tile) { updateTile(tile, t, windowLabel); }
          var row = table && table.querySelector('tbody tr[data-area="' + t.code + '"]');
          if (row) {
            setCell(row, "total", t.total, String(t.total));
            setCell(row, "severe", t.severe, String(t.severe));
            setCell(row, "gravest", t.max_severity, t.max_severity ? String(t.max_severity) : "None");
            setCell(row, "jtai", t.jtai, JTAI[t.jtai] || t.jtai);
          }
        });
        if (table) { resort(table); }
        if (shown === null) {
          shown = sum;
          return;
        }
        var arrived = sum - shown;
        shown = sum;
        if (arrived > 0) {
          say(plural(arrived, "new finding", "new findings") + " arrived (" + clock() + "); " +
            concerns(sum) + " in " + windowLabel + ".");
        } else {
          say("Totals updated (" + clock() + "); " + concerns(sum) + " in " + windowLabel + ".");
        }
      }
    });
  }

  /* -- live feed: new rows on top --------------------------------------------------------- */

  function cell(tr, name, text) {
    var td = document.createElement("td");
    td.className = name;
    if (text !== undefined) { td.textContent = text; }
    tr.appendChild(td);
    return td;
  }

  function link(href, text) {
    var a = document.createElement("a");
    a.setAttribute("href", href);
    a.textContent = text;
    return a;
  }

  function feedRow(r) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-event-id", r.id);
    tr.className = "new";
    var time = document.createElement("time");
    time.setAttribute("datetime", r.iso);
    time.textContent = r.time;
    cell(tr, "time").appendChild(time);
    cell(tr, "area").appendChild(link("/area/" + encodeURIComponent(r.area), r.area_name));
    cell(tr, "region", r.region);
    cell(tr, "publisher", r.publisher);
    var finding = cell(tr, "finding");
    finding.appendChild(link("/event/" + encodeURIComponent(r.id), r.finding));
    if (r.immediate_risk) {
      var risk = document.createElement("strong");
      risk.className = "risk";
      risk.textContent = "Immediate risk";
      finding.appendChild(document.createTextNode(" "));
      finding.appendChild(risk);
    }
    cell(tr, "theme", r.theme);
    cell(tr, "severity num", r.severity);
    cell(tr, "agencies", r.agencies);
    cell(tr, "summary", r.summary);
    return tr;
  }

  function feed(main) {
    var table = document.getElementById("feed-table");
    if (!table) { return; }
    var body = table.tBodies[0];
    listen(main.getAttribute("data-stream"), {
      items: function (rows) {
        var added = 0;
        for (var i = rows.length - 1; i >= 0; i -= 1) {
          var r = rows[i];
          if (body.querySelector('tr[data-event-id="' + r.id + '"]')) { continue; }
          body.insertBefore(feedRow(r), body.firstChild);
          added += 1;
        }
        while (body.rows.length > 1000) { body.deleteRow(body.rows.length - 1); }
        if (added) {
          say(plural(added, "new finding", "new findings") + " arrived (" + clock() + ").");
        }
      }
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
    var main = document.getElementById("main");
    if (!main) { return; }
    var page = main.getAttribute("data-page");
    if (page === "overview") { overview(main); }
    if (page === "feed") { feed(main); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
