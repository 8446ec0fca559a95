/* The backtest report: draws each brand's section from the JSON embedded in the file. */
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  var HOURS = []; for (var h = 0; h < 24; h++) HOURS.push(String(h).padStart(2, "0"));
  function make(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  document.getElementById("meta").textContent = data.posts + " posts (" + data.rejected + " rejected), " +
    data.window.from + " to " + data.window.to + ", SLA " + RC.duration(data.sla_seconds) + ", generated " + data.generated_at;
  var nav = document.getElementById("brands"), main = document.getElementById("report");
  Object.keys(data.brands).sort().forEach(function (brand) {
    var b = data.brands[brand], s = b.summary, id = "brand-" + brand.replace(/[^A-Za-z0-9_-]/g, "_");
    nav.appendChild(make("a", { href: "#" + id }, brand));
    var section = make("section", { id: id, "data-brand": brand, "aria-label": brand });
    section.appendChild(make("h2", {}, brand));
    var list = make("dl", { "class": "figures" });
    [["mentions", "Mentions", s.mentions, String(s.mentions)],
     ["responded", "Answered", s.responded, String(s.responded)],
     ["response_rate", "Response rate", s.response_rate, RC.percent(s.response_rate)],
     ["compliance", "First-response SLA", s.sla.compliance, RC.percent(s.sla.compliance)],
     ["first_p50", "First response p50", s.first_response_seconds.p50, RC.duration(s.first_response_seconds.p50)],
     ["first_p90", "First response p90", s.first_response_seconds.p90, RC.duration(s.first_response_seconds.p90)],
     ["next_p50", "Next response p50", s.next_response_seconds.p50, RC.duration(s.next_response_seconds.p50)],
     ["next_compliance", "Next-response SLA", s.next_sla.compliance, RC.percent(s.next_sla.compliance)],
     ["pending", "Never answered", s.sla.pending, String(s.sla.pending)]].forEach(function (f) {
      var box = make("div");
      box.appendChild(make("dt", {}, f[1]));
      box.appendChild(make("dd", { "data-metric": f[0], "data-value": f[2] === null ? "" : JSON.stringify(f[2]) }, f[3]));
      list.appendChild(box);
    });
    section.appendChild(list);
    var after = -1;
    b.bands.forEach(function (band, i) { if (band.up_to_seconds !== null && band.up_to_seconds <= data.sla_seconds) after = i; });
    var dist = make("figure", { "class": "distribution", "data-counts": b.bands.map(function (band) { return band.count; }).join(",") });
    dist.appendChild(make("figcaption", {}, "First responses by time taken"));
    dist.appendChild(RC.barChart({ label: brand + ": answered first waits by time taken",
      bars: b.bands.map(function (band) { return { label: band.label.replace("_", " "), value: band.count }; }),
      marker: { after: after, label: "SLA " + RC.duration(data.sla_seconds) } }));
    section.appendChild(dist);
    var heat = make("figure", { "class": "heat", "data-cells": String(b.heat.reduce(function (n, row) {
      return n + row.filter(function (v) { return v !== null; }).length; }, 0)) });
    heat.appendChild(make("figcaption", {}, "First-response SLA compliance by hour of the week (UTC; grey: nothing decided)"));
    heat.appendChild(RC.heatmap({ label: brand + ": compliance by hour of the week", rows: DAYS, cols: HOURS, values: b.heat }));
    section.appendChild(heat);
    main.appendChild(section);
  });
  document.body.setAttribute("data-ready", "true");
})();
