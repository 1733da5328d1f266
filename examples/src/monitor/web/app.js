// vigil-monitor pages: query history (localStorage) and a crosshair with
// values on the SVG charts. Everything works without this script.
(function () {
  "use strict";
  var KEY = "vigil.history";

  function history() {
    try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { return []; }
  }

  function remember(expr) {
    if (!expr) return;
    var h = history().filter(function (x) { return x !== expr; });
    h.unshift(expr);
    try { localStorage.setItem(KEY, JSON.stringify(h.slice(0, 30))); } catch (e) { /* private mode */ }
  }

  function showHistory() {
    var box = document.getElementById("history");
    if (!box) return;
    var h = history();
    if (!h.length) return;
    var ul = box.querySelector("ul");
    h.forEach(function (expr) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      var params = new URLSearchParams(location.search);
      params.set("expr", expr);
      a.href = "/graph?" + params.toString();
      a.textContent = expr;
      li.appendChild(a);
      ul.appendChild(li);
    });
    box.hidden = false;
  }

  function fmt(v) {
    if (v === null) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(4);
    return String(Math.round(v * 1e6) / 1e6);
  }

  function crosshair(svg, data) {
    var start = +svg.dataset.start, end = +svg.dataset.end;
    var left = +svg.dataset.left, right = +svg.dataset.right, top = +svg.dataset.top, bottom = +svg.dataset.bottom;
    var vb = svg.viewBox.baseVal;
    var ns = "http://www.w3.org/2000/svg";
    var line = document.createElementNS(ns, "line");
    line.setAttribute("class", "cross");
    line.setAttribute("y1", top);
    line.setAttribute("y2", vb.height - bottom);
    line.style.display = "none";
    svg.appendChild(line);
    var tip = document.createElement("div");
    tip.className = "tooltip";
    tip.hidden = true;
    document.body.appendChild(tip);
    var names = Array.prototype.map.call(
      svg.nextElementSibling ? svg.nextElementSibling.querySelectorAll("li") : [],
      function (li) { return li.textContent; });
    svg.addEventListener("mousemove", function (ev) {
      var r = svg.getBoundingClientRect();
      var x = (ev.clientX - r.left) / r.width * vb.width;
      if (x < left || x > vb.width - right) { line.style.display = "none"; tip.hidden = true; return; }
      var t = start + (x - left) / (vb.width - left - right) * (end - start);
      line.setAttribute("x1", x);
      line.setAttribute("x2", x);
      line.style.display = "";
      var rows = [new Date(t).toISOString().replace("T", " ").slice(0, 19) + " UTC"];
      data.slice(0, 12).forEach(function (pts, i) {
        var best = null, bd = Infinity;
        pts.forEach(function (p) { var d = Math.abs(p[0] - t); if (d < bd) { bd = d; best = p; } });
        if (best) rows.push(fmt(best[1]) + "  " + (names[i] || ""));
      });
      if (data.length > 12) rows.push("… " + (data.length - 12) + " more");
      tip.textContent = rows.join("\n");
      tip.style.whiteSpace = "pre";
      tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 440) + "px";
      tip.style.top = (ev.clientY + 14) + "px";
      tip.hidden = false;
    });
    svg.addEventListener("mouseleave", function () { line.style.display = "none"; tip.hidden = true; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var params = new URLSearchParams(location.search);
    if (location.pathname === "/graph" && params.get("expr") && !document.querySelector(".error")) {
      remember(params.get("expr"));
    }
    showHistory();
    var expr = document.getElementById("expr");
    if (expr) {
      expr.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); expr.form.submit(); }
      });
    }
    document.querySelectorAll("script.chart-data").forEach(function (s) {
      var svg = document.getElementById(s.dataset.for);
      if (svg) {
        try { crosshair(svg, JSON.parse(s.textContent)); } catch (e) { /* leave the plain chart */ }
      }
    });
  });
})();
