/* ReplyClock charts: small hand-written SVG charts, no dependency. Shared by the dashboard and the
   backtest report (which inlines this file). Each function returns an <svg> element. */
"use strict";
(function (root) {
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(width, height, label) {
    return el("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": label,
      preserveAspectRatio: "none", "class": "chart" });
  }
  var PALETTE = ["#1f6feb", "#d9480f", "#2f9e44", "#9c36b5"];

  /* A line chart: xs (ms since epoch), series [{name, values (null = gap)}], fmt(value) for the y axis. */
  function lineChart(opts) {
    var W = 640, H = 220, L = 52, R = 8, T = 10, B = 24;
    var node = svg(W, H, opts.label);
    var xs = opts.xs, all = [];
    opts.series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v !== undefined) all.push(v); }); });
    var max = opts.max !== undefined ? opts.max : Math.max.apply(null, all.concat([0])) || 1;
    var x0 = xs[0] || 0, x1 = xs[xs.length - 1] || 1;
    function X(x) { return L + (x1 === x0 ? 0 : (x - x0) / (x1 - x0)) * (W - L - R); }
    function Y(y) { return T + (1 - y / max) * (H - T - B); }
    [0, 0.5, 1].forEach(function (f) {
      node.appendChild(el("line", { x1: L, x2: W - R, y1: Y(max * f), y2: Y(max * f), "class": "grid" }));
      node.appendChild(el("text", { x: L - 4, y: Y(max * f) + 4, "text-anchor": "end", "class": "tick" }, opts.fmt(max * f)));
    });
    if (xs.length) {
      node.appendChild(el("text", { x: L, y: H - 6, "class": "tick" }, opts.xfmt(xs[0])));
      node.appendChild(el("text", { x: W - R, y: H - 6, "text-anchor": "end", "class": "tick" }, opts.xfmt(xs[xs.length - 1])));
    }
    opts.series.forEach(function (s, i) {
      var d = "", pen = "M", color = s.color || PALETTE[i % PALETTE.length];
      var gap = function (v) { return v === null || v === undefined; };
      s.values.forEach(function (v, j) {
        if (gap(v)) { pen = "M"; return; }
        d += pen + X(xs[j]).toFixed(1) + " " + Y(v).toFixed(1) + " ";
        pen = "L";
        // A point with no neighbour draws no line: mark it.
        if (gap(s.values[j - 1]) && gap(s.values[j + 1])) {
          node.appendChild(el("circle", { cx: X(xs[j]).toFixed(1), cy: Y(v).toFixed(1), r: 3, fill: color }));
        }
      });
      var path = el("path", { d: d, fill: "none", stroke: color, "stroke-width": 2,
        "vector-effect": "non-scaling-stroke" });
      path.appendChild(el("title", {}, s.name));
      node.appendChild(path);
    });
    return node;
  }

  /* A bar chart: bars [{label, value}]; marker {after: index, label} draws a dashed line after that bar. */
  function barChart(opts) {
    var W = 640, H = 220, L = 40, R = 8, T = 16, B = 24;
    var node = svg(W, H, opts.label);
    var max = Math.max.apply(null, opts.bars.map(function (b) { return b.value; }).concat([1]));
    var n = opts.bars.length, slot = (W - L - R) / Math.max(n, 1);
    node.appendChild(el("text", { x: L - 4, y: T + 4, "text-anchor": "end", "class": "tick" }, String(max)));
    node.appendChild(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, "class": "grid" }));
    opts.bars.forEach(function (b, i) {
      var h = (b.value / max) * (H - T - B);
      var rect = el("rect", { x: L + i * slot + slot * 0.15, y: H - B - h, width: slot * 0.7, height: h, "class": "bar" });
      rect.appendChild(el("title", {}, b.label + ": " + b.value));
      node.appendChild(rect);
      node.appendChild(el("text", { x: L + i * slot + slot / 2, y: H - 6, "text-anchor": "middle", "class": "tick" }, b.label));
      node.appendChild(el("text", { x: L + i * slot + slot / 2, y: H - B - h - 3, "text-anchor": "middle", "class": "tick" }, String(b.value)));
    });
    if (opts.marker) {
      var mx = L + (opts.marker.after + 1) * slot;
      node.appendChild(el("line", { x1: mx, x2: mx, y1: T - 6, y2: H - B, "class": "marker" }));
      node.appendChild(el("text", { x: mx + 4, y: T + 12, "class": "tick marker-label" }, opts.marker.label));
    }
    return node;
  }

  /* A heat map: rows x cols of values in [0, 1] or null (no data). */
  function heatmap(opts) {
    var cols = opts.cols.length, rows = opts.rows.length, C = 22, L = 36, T = 16;
    var node = svg(L + cols * C, T + rows * C, opts.label);
    node.setAttribute("preserveAspectRatio", "xMinYMin meet");
    opts.cols.forEach(function (c, j) {
      if (j % 3 === 0) node.appendChild(el("text", { x: L + j * C + C / 2, y: 12, "text-anchor": "middle", "class": "tick" }, c));
    });
    opts.rows.forEach(function (r, i) {
      node.appendChild(el("text", { x: L - 4, y: T + i * C + C * 0.65, "text-anchor": "end", "class": "tick" }, r));
      opts.values[i].forEach(function (v, j) {
        var fill = v === null ? "#e9ecef" : "hsl(" + Math.round(v * 120) + ",65%,50%)";
        var cell = el("rect", { x: L + j * C + 1, y: T + i * C + 1, width: C - 2, height: C - 2, fill: fill });
        cell.appendChild(el("title", {}, r + " " + opts.cols[j] + ": " + (v === null ? "no decided waits" : Math.round(v * 100) + "%")));
        node.appendChild(cell);
      });
    });
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var s = Math.abs(seconds), sign = seconds < 0 ? "-" : "";
    if (s < 60) return sign + Math.round(s) + " s";
    if (s < 3600) return sign + Math.round(s / 60) + " min";
    if (s < 86400) return sign + (s / 3600).toFixed(1) + " h";
    return sign + (s / 86400).toFixed(1) + " d";
  }
  function percent(value) { return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%"; }

  root.RC = { lineChart: lineChart, barChart: barChart, heatmap: heatmap, duration: duration, percent: percent };
})(window);
