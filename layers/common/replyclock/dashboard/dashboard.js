/* The ReplyClock dashboard: reads the API (same origin, same auth as any client) and draws it. */
"use strict";
(function () {
  var REFRESH_SECONDS = Number(new URLSearchParams(location.search).get("refresh")) || 60;
  var PRIORITIES = ["urgent", "high", "normal", "low"];
  var SEVERITY = { breached: 0, at_risk: 1, pending: 2 };
  var $ = function (id) { return document.getElementById(id); };
  var state = { brand: null, interval: "hour", generation: 0, openWaits: [] };

  function headers() {
    var token = sessionStorage.getItem("replyclock.token");
    return token ? { Authorization: "Bearer " + token } : {};
  }
  function api(path, query) {
    var url = path + (query ? "?" + new URLSearchParams(query).toString() : "");
    return fetch(url, { headers: headers(), credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          var hint = response.status === 401 || response.status === 403 ? " (set a token under Token)" : "";
          throw new Error(path + ": " + response.status + " " + (body.message || "") + hint);
        });
      }
      return response.json();
    });
  }
  // The window's lanes, following the cursor for up to MAX_PAGES pages of 200.
  var MAX_PAGES = 5;
  function conversations(brand) {
    var items = [];
    function page(cursor, left) {
      var query = { brand: brand, limit: "200" };
      if (cursor) query.cursor = cursor;
      return api("conversations", query).then(function (answer) {
        items = items.concat(answer.items);
        return answer.next_cursor && left > 1 ? page(answer.next_cursor, left - 1) : { items: items };
      });
    }
    return page(null, MAX_PAGES);
  }
  function setText(node, text) { node.textContent = text; return node; }
  function make(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function figure(list, key, label, value, text) {
    var box = make("div");
    box.appendChild(make("dt", {}, label));
    box.appendChild(make("dd", { "data-metric": key, "data-value": value === null ? "" : String(value) }, text));
    list.appendChild(box);
  }

  function renderSummary(s) {
    var list = $("figures"); list.replaceChildren();
    figure(list, "mentions", "Mentions", s.mentions, String(s.mentions));
    figure(list, "responded", "Answered", s.responded, String(s.responded));
    figure(list, "response_rate", "Response rate", s.response_rate, RC.percent(s.response_rate));
    figure(list, "compliance", "First-response SLA", s.sla.compliance, RC.percent(s.sla.compliance));
    figure(list, "first_p50", "First response p50", s.first_response_seconds.p50, RC.duration(s.first_response_seconds.p50));
    figure(list, "first_p90", "First response p90", s.first_response_seconds.p90, RC.duration(s.first_response_seconds.p90));
    figure(list, "next_p50", "Next response p50", s.next_response_seconds.p50, RC.duration(s.next_response_seconds.p50));
    figure(list, "next_compliance", "Next-response SLA", s.next_sla.compliance, RC.percent(s.next_sla.compliance));
    figure(list, "at_risk", "At risk", s.sla.at_risk, String(s.sla.at_risk));
    // Hand-offs (to DM) once the API reports them.
    if ("handoff_rate" in s) figure(list, "handoff_rate", "Hand-off rate", s.handoff_rate, RC.percent(s.handoff_rate));
  }

  function openWaitsOf(items) {
    var open = [];
    items.forEach(function (item) {
      var last = item.waits[item.waits.length - 1];
      if (last && last.ended_at === null) open.push({ item: item, wait: last });
    });
    open.sort(function (a, b) {
      return (SEVERITY[a.wait.status] - SEVERITY[b.wait.status]) ||
        (Date.parse(a.wait.started_at) - Date.parse(b.wait.started_at));
    });
    return open;
  }
  function renderNow(page) {
    var open = state.openWaits = openWaitsOf(page.items);
    var counts = { pending: 0, at_risk: 0, breached: 0 };
    open.forEach(function (o) { counts[o.wait.status] = (counts[o.wait.status] || 0) + 1; });
    var list = $("open-counts"); list.replaceChildren();
    figure(list, "open", "Open waits", open.length, String(open.length));
    figure(list, "open_breached", "Breached", counts.breached, String(counts.breached));
    figure(list, "open_at_risk", "At risk", counts.at_risk, String(counts.at_risk));
    figure(list, "open_pending", "Pending", counts.pending, String(counts.pending));
    var body = $("open-waits").tBodies[0]; body.replaceChildren();
    open.slice(0, 50).forEach(function (o) {
      var row = make("tr", { "data-conversation": o.item.conversation_id });
      row.appendChild(make("td", { "class": o.wait.status }, o.wait.status.replace("_", " ")));
      row.appendChild(make("td", {}, o.item.customer));
      row.appendChild(make("td", {}, o.item.channel));
      row.appendChild(make("td", {}, o.wait.priority));
      row.appendChild(make("td", { "data-since": o.wait.started_at }));
      row.appendChild(make("td", { "data-at-risk": o.wait.at_risk_at }));
      row.appendChild(make("td", { "data-due": o.wait.due_at }));
      body.appendChild(row);
    });
    if (!open.length) body.appendChild(make("tr")).appendChild(make("td", { colspan: 7 }, "No open waits."));
    tick();
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (td) {
      setText(td, RC.duration((now - Date.parse(td.getAttribute("data-since"))) / 1000));
    });
    document.querySelectorAll("[data-at-risk]").forEach(function (td) {
      var left = (Date.parse(td.getAttribute("data-at-risk")) - now) / 1000;
      setText(td, left >= 0 ? RC.duration(left) : "now");
      td.classList.toggle("at_risk", left < 0);
    });
    document.querySelectorAll("[data-due]").forEach(function (td) {
      var left = (Date.parse(td.getAttribute("data-due")) - now) / 1000;
      setText(td, left >= 0 ? RC.duration(left) : "overdue " + RC.duration(-left));
      td.classList.toggle("overdue", left < 0);
    });
  }

  function renderTrends(series) {
    var xs = series.points.map(function (p) { return Date.parse(p.from); });
    var col = function (f) { return series.points.map(f); };
    $("trends").setAttribute("data-points", String(xs.length));
    var xfmt = function (ms) { return new Date(ms).toISOString().slice(0, series.interval === "day" ? 10 : 13).replace("T", " "); };
    $("chart-rates").replaceChildren(RC.lineChart({ label: "Response rate and compliance over time", xs: xs, max: 1,
      fmt: RC.percent, xfmt: xfmt, series: [
        { name: "response rate", values: col(function (p) { return p.response_rate; }) },
        { name: "SLA compliance", values: col(function (p) { return p.sla.compliance; }) }] }));
    [["chart-first", "first_response_seconds", "First"], ["chart-next", "next_response_seconds", "Next"]].forEach(function (c) {
      $(c[0]).replaceChildren(RC.lineChart({ label: c[2] + " response p50 and p90 over time", xs: xs, fmt: RC.duration,
        xfmt: xfmt, series: [
          { name: "p50", values: col(function (p) { return p[c[1]].p50; }) },
          { name: "p90", values: col(function (p) { return p[c[1]].p90; }) }] }));
    });
    // Surge: the last hour's mentions against the mean of the window's hours before it.
    var mentions = col(function (p) { return p.mentions; });
    var banner = $("surge");
    if (series.interval === "hour" && mentions.length > 24) {
      var last = mentions[mentions.length - 1], before = mentions.slice(0, -1);
      var mean = before.reduce(function (a, b) { return a + b; }, 0) / before.length;
      var surge = last >= 5 && last > 3 * mean;
      banner.hidden = !surge;
      if (surge) setText(banner, "Surge: " + last + " mentions this hour, " + (last / Math.max(mean, 0.01)).toFixed(1) + "× the usual " + mean.toFixed(1) + ".");
    } else banner.hidden = true;
  }

  function renderDistribution(dist, targetSeconds) {
    var bands = dist.bands.map(function (b) { return { label: b.label.replace("_", " "), value: b.count }; });
    var after = -1;
    dist.bands.forEach(function (b, i) { if (b.up_to_seconds !== null && b.up_to_seconds <= targetSeconds) after = i; });
    $("chart-distribution").replaceChildren(RC.barChart({ label: "Answered first waits by time taken", bars: bands,
      marker: targetSeconds ? { after: after, label: "SLA " + RC.duration(targetSeconds) } : null }));
    $("chart-distribution").setAttribute("data-counts", dist.bands.map(function (b) { return b.count; }).join(","));
  }

  function renderMatrix(channels, cells) {
    var table = $("channel-priority"); table.replaceChildren();
    var head = table.createTHead().insertRow();
    head.appendChild(make("th", { scope: "col" }, "channel"));
    PRIORITIES.forEach(function (p) { head.appendChild(make("th", { scope: "col" }, p)); });
    var body = table.createTBody();
    channels.forEach(function (channel, i) {
      var row = body.insertRow();
      row.appendChild(make("th", { scope: "row" }, channel));
      PRIORITIES.forEach(function (p, j) {
        var s = cells[i * PRIORITIES.length + j];
        row.appendChild(make("td", { "data-cell": channel + "/" + p, "data-value": String(s.mentions) },
          RC.percent(s.sla.compliance) + " · " + s.mentions));
      });
    });
    if (!channels.length) body.insertRow().appendChild(make("td", { colspan: 5 }, "The brand has no channel handles."));
  }

  function refresh() {
    var brand = state.brand, generation = ++state.generation, q = { brand: brand };
    var seriesQuery = { brand: brand, interval: state.interval };
    if (state.interval === "day") {
      var day = 86400000, today = Math.floor(Date.now() / day) * day;
      seriesQuery.from = new Date(today - 29 * day).toISOString().replace(".000Z", "Z");
    }
    setText($("status"), "Loading " + brand + "…");
    var id = encodeURIComponent(brand);
    return Promise.all([
      api("metrics/summary", q), api("metrics/timeseries", seriesQuery), api("metrics/distribution", q),
      conversations(brand), api("brands/" + id), api("brands/" + id + "/sla-policy")
    ]).then(function (r) {
      var channels = Object.keys(r[4].handles || {}).sort();
      var cells = [];
      channels.forEach(function (c) { PRIORITIES.forEach(function (p) {
        cells.push(api("metrics/summary", { brand: brand, channel: c, priority: p })); }); });
      return Promise.all(cells).then(function (matrix) {
        if (generation !== state.generation) return;
        var policy = r[5].current || r[5];
        var target = policy && policy.targets ? policy.targets.normal : null;
        renderSummary(r[0]); renderTrends(r[1]); renderDistribution(r[2], target); renderNow(r[3]);
        renderMatrix(channels, matrix);
        document.body.setAttribute("data-brand", brand);
        setText($("status"), brand + " · updated " + new Date().toLocaleTimeString() + " · refreshes every " + REFRESH_SECONDS + " s");
      });
    }).catch(function (error) {
      if (generation === state.generation) setText($("status"), "Could not load: " + error.message);
    });
  }

  function start() {
    var token = $("token");
    token.value = sessionStorage.getItem("replyclock.token") || "";
    token.addEventListener("change", function () {
      if (token.value) sessionStorage.setItem("replyclock.token", token.value); else sessionStorage.removeItem("replyclock.token");
      boot();
    });
    $("brand").addEventListener("change", function (e) { state.brand = e.target.value; history.replaceState(null, "", "#" + encodeURIComponent(state.brand)); refresh(); });
    document.querySelectorAll("input[name=interval]").forEach(function (radio) {
      radio.addEventListener("change", function () { state.interval = radio.value; refresh(); });
    });
    $("refresh").addEventListener("click", refresh);
    $("controls").addEventListener("submit", function (e) { e.preventDefault(); });
    setInterval(function () { if (state.brand && !document.hidden) refresh(); }, REFRESH_SECONDS * 1000);
    setInterval(tick, 1000);
    boot();
  }
  function boot() {
    return api("brands").then(function (list) {
      var select = $("brand"); select.replaceChildren();
      list.items.forEach(function (b) { select.appendChild(make("option", { value: b.id }, b.name + " (" + b.id + ")")); });
      var wanted = decodeURIComponent(location.hash.slice(1));
      state.brand = list.items.some(function (b) { return b.id === wanted; }) ? wanted : (list.items[0] || {}).id;
      if (!state.brand) { setText($("status"), "No brand is configured (or readable with this token)."); return; }
      select.value = state.brand;
      return refresh();
    }).catch(function (error) { setText($("status"), "Could not load brands: " + error.message); });
  }
  start();
})();
