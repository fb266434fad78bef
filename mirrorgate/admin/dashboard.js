// mirrorgate admin dashboard: polls this admin server and draws what it reads. No library, no build step.
//
// Rules:
// 1. Everything shown comes from the admin server and is untrusted (names, header values, bodies):
//    it is put in the page as text nodes and attribute values only (never parsed as markup, no URLs built from it
//    but this server's own /mirrors/<id>/diffs with the id percent-encoded).
// 2. Every second: /metrics (Prometheus text, parsed here) and /mirrors (+ the selected mirror's diffs).
//    /config_dump and /status when a reload counter moved, and every 10 s otherwise (they can be large).
// 3. Rates are deltas of counters between polls (a counter that went down restarted: its new value
//    is the delta; a series that appears after the first poll was 0 at the poll before, as the
//    gateway creates a mirror's series on its first request); history keeps the last 60 polls.
// 4. A missing or failing endpoint is said on the page; what the others give is still shown.
"use strict";

(() => {
  const POLL_MS = 1000;
  const HISTORY = 61; // samples kept per series: 60 intervals
  const SLOW_EVERY_MS = 10000;
  const MAX_ROWS = 200;

  const { el, parseNumber, svg, breakable, parseProm, History, fmtNum, fmtMs, fmtBytes, fmtTime, sparkline, bars, matchText, quantile, pairs, childPath, jsonInto } = globalThis.MirrorgateDashboard;
  const $ = (sel) => document.querySelector(sel);
  const readings = new History(HISTORY);

  // ---- rates -----------------------------------------------------------------------------------
  function sparkCell(key, what, colour) {
    const now = readings.rateNow(key);
    const text = now === null ? "—" : fmtNum(now);
    const series = readings.rates(key);
    return el("div", { class: "spark", "data-peak": series.length ? Math.max(...series) : "" },
      el("span", { class: "val", "data-field": "rate" }, text),
      sparkline(series, `${what}: ${text} per second now, last 60 seconds`, colour, HISTORY - 1));
  }

  // ---- model ---------------------------------------------------------------------------------
  const state = {
    polls: 0,
    config: null, // {rules: [...], mirrors: Map name -> {name, backend, ppm, policy, rule, level}}
    status: null,
    mirrorsDoc: null, // the /mirrors document, or null
    mirrorsError: null,
    mirrorsRetryAt: 0,
    metrics: null, // per-poll digest
    slowAt: 0,
    reloadMark: "",
    selectedMirror: null,
    selectedDiff: null,
    diffs: null,
    diffsKey: "",
    errors: {},
  };

  function digestConfig(dump) {
    const rules = new Map();
    const mirrors = new Map();
    for (const server of dump.servers || []) {
      for (const listener of server.listeners || []) {
        for (const vhost of listener.virtualHosts || []) {
          for (const route of vhost.routes || []) {
            const action = route.action || {};
            const ruleName = action.rule || route.name;
            let rule = rules.get(ruleName);
            if (!rule) {
              rule = { name: ruleName, matches: [], hosts: new Set(), backends: [], mirrors: [], ruleMirrors: [] };
              rules.set(ruleName, rule);
              for (const b of action.backends || []) {
                rule.backends.push({ name: b.name, weight: b.weight });
                for (const m of (b.filters && b.filters.mirrors) || []) addMirror(rule, m, b.name);
              }
              for (const m of (action.filters && action.filters.mirrors) || []) addMirror(rule, m, null);
            }
            rule.hosts.add(vhost.hostname || "*");
            rule.matches.push(matchText(route.match || {}));
          }
        }
      }
    }
    function addMirror(rule, m, underBackend) {
      if (!mirrors.has(m.name)) {
        mirrors.set(m.name, { name: m.name, backend: m.backend, ppm: m.ppm, policy: m.policy || null, rule: rule.name, underBackend });
      }
      rule.mirrors.push(m.name);
      if (underBackend === null) rule.ruleMirrors.push(m.name);
    }
    return { rules: [...rules.values()], mirrors };
  }

  function digestMetrics(samples, t) {
    const mirrors = new Map();
    const get = (labels) => {
      const key = labels.mirror;
      let m = mirrors.get(key);
      if (!m) mirrors.set(key, (m = { name: key, route: labels.route, backend: labels.backend, sent: 0, sampledOut: 0, completed: {}, dropped: {}, buckets: new Map(), count: 0 }));
      return m;
    };
    const gauges = { connections: null, buffered: null, breakers: 0, reloads: {} };
    for (const s of samples) {
      const l = s.labels;
      switch (s.name) {
        case "mirrorgate_mirror_sent_total": get(l).sent += s.value; break;
        case "mirrorgate_mirror_sampled_out_total": get(l).sampledOut += s.value; break;
        case "mirrorgate_mirror_requests_total": { const m = get(l); m.completed[l.outcome] = (m.completed[l.outcome] || 0) + s.value; break; }
        case "mirrorgate_mirror_dropped_total": { const m = get(l); m.dropped[l.reason] = (m.dropped[l.reason] || 0) + s.value; break; }
        case "mirrorgate_mirror_duration_seconds_bucket": { const m = get(l); const le = parseNumber(l.le); m.buckets.set(le, (m.buckets.get(le) || 0) + s.value); break; }
        case "mirrorgate_connections": gauges.connections = (gauges.connections || 0) + s.value; break;
        case "mirrorgate_mirror_buffered_bytes": gauges.buffered = (gauges.buffered || 0) + s.value; break;
        case "mirrorgate_mirror_breaker_open": if (s.value > 0) gauges.breakers += 1; break;
        case "mirrorgate_reloads_total": gauges.reloads[l.outcome] = (gauges.reloads[l.outcome] || 0) + s.value; break;
        default: break;
      }
    }
    let sentAll = 0;
    for (const m of mirrors.values()) {
      // Each request of its rule is sampled out, or sampled and then completed or dropped (a
      // dropped one may have been sent first): "seen" counts each once, when it ends.
      const ended = [m.completed, m.dropped].flatMap(Object.values).reduce((a, b) => a + b, 0);
      readings.record("sent|" + m.name, t, m.sent);
      readings.record("seen|" + m.name, t, m.sampledOut + ended);
      const buckets = [...m.buckets.entries()].sort((a, b) => a[0] - b[0]);
      readings.record("hist|" + m.name, t, buckets, buckets.map(([le]) => [le, 0]));
      sentAll += m.sent;
    }
    readings.record("sent|*", t, sentAll);
    if (state.config) {
      for (const rule of state.config.rules) {
        if (!rule.mirrors.length) continue;
        const at = (when) => {
          // rule-level mirrors each see every request: the largest count; backend-level ones split them: the sum.
          const values = (rule.ruleMirrors.length ? rule.ruleMirrors : rule.mirrors).map((m) => readings.valueAt("seen|" + m, when));
          return rule.ruleMirrors.length ? Math.max(...values) : values.reduce((a, b) => a + b, 0);
        };
        readings.record("rule|" + rule.name, t, at(t), readings.previousPoll === null ? 0 : at(readings.previousPoll));
      }
    }
    readings.endPoll(t);
    return { mirrors, gauges };
  }

  function mirrorLatency(name) {
    const h = readings.get("hist|" + name);
    if (!h.length) return null;
    const last = h[h.length - 1].v;
    const first = h[0].v;
    const window = last.map(([le, c], i) => [le, first[i] && first[i][0] === le && c >= first[i][1] ? c - first[i][1] : c]);
    const recent = window.length && window[window.length - 1][1] > 0;
    const use = recent ? window : last;
    const p50 = quantile(0.5, use), p99 = quantile(0.99, use);
    return p50 === null ? null : { p50: p50 * 1000, p99: p99 * 1000, recent };
  }

  // ---- fetching ------------------------------------------------------------------------------
  async function getText(path) {
    const r = await fetch(path, { cache: "no-store", credentials: "same-origin" });
    if (!r.ok) {
      const err = new Error(`${path}: HTTP ${r.status}`);
      err.status = r.status;
      throw err;
    }
    return r.text();
  }
  async function getJson(path) {
    return JSON.parse(await getText(path));
  }

  async function poll() {
    const t = performance.now() / 1000;
    const now = Date.now();
    let samples = null;
    const metrics = getText("/metrics").then((text) => {
      samples = parseProm(text);
      delete state.errors.metrics;
    }, (e) => { state.errors.metrics = String(e.message || e); });
    const mirrorsWanted = now >= state.mirrorsRetryAt;
    const mirrors = mirrorsWanted ? getJson("/mirrors").then((doc) => {
      if (!doc || !Array.isArray(doc.mirrors)) throw new Error("/mirrors: not a {\"mirrors\": [...]} document");
      state.mirrorsDoc = doc;
      state.mirrorsError = null;
    }).catch((e) => {
      state.mirrorsDoc = null;
      state.mirrorsError = e.status === 404
        ? "This gateway serves no /mirrors endpoint: match rates, primary latency and mismatches are not available."
        : `/mirrors failed: ${e.message || e}`;
      state.mirrorsRetryAt = Date.now() + SLOW_EVERY_MS;
    }) : Promise.resolve();
    await Promise.all([metrics, mirrors]);
    const reloads = JSON.stringify((samples || []).filter((x) => x.name === "mirrorgate_reloads_total"));
    if (reloads !== state.reloadMark || now >= state.slowAt || !state.config) {
      state.reloadMark = reloads;
      state.slowAt = now + SLOW_EVERY_MS;
      await Promise.all([
        getJson("/config_dump").then((d) => { state.config = digestConfig(d); delete state.errors.config; },
          (e) => { state.errors.config = String(e.message || e); }),
        getJson("/status").then((d) => { state.status = d; delete state.errors.status; },
          (e) => { state.errors.status = String(e.message || e); }),
      ]);
    }
    if (samples) state.metrics = digestMetrics(samples, t); // after the configuration: rule rates need it
    await pollDiffs();
    state.polls += 1;
  }

  function comparedMirrors() {
    return ((state.mirrorsDoc && state.mirrorsDoc.mirrors) || []).filter((m) => m && m.compare);
  }
  async function pollDiffs() {
    const compared = comparedMirrors();
    if (!compared.some((m) => m.id === state.selectedMirror)) {
      const withMismatch = compared.find((m) => m.compare.compared > m.compare.matched);
      state.selectedMirror = (withMismatch || compared[0] || { id: null }).id;
    }
    if (state.selectedMirror === null || state.selectedMirror === undefined) {
      state.diffs = null;
      delete state.errors.diffs;
      return;
    }
    try {
      state.diffs = await getJson("/mirrors/" + encodeURIComponent(String(state.selectedMirror)) + "/diffs");
      delete state.errors.diffs;
    } catch (e) {
      state.errors.diffs = String(e.message || e);
    }
  }

  // ---- rendering -----------------------------------------------------------------------------
  function render() {
    renderState();
    renderOverview();
    const view = mirrorView();
    renderRoutes(view);
    renderMirrors(view);
    renderDiffs();
    document.body.dataset.polls = String(state.polls);
  }

  function renderState() {
    const errs = Object.values(state.errors);
    const node = $("#state");
    node.className = errs.length ? "error" : "";
    node.textContent = errs.length
      ? "cannot read " + errs.join("; ")
      : `updated ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000} s`;
  }

  function renderOverview() {
    const g = state.metrics ? state.metrics.gauges : null;
    const items = state.status && Array.isArray(state.status.items) ? state.status.items : [];
    const problems = statusProblems(items);
    const cards = [
      ["Open connections", g ? fmtNum(g.connections) : "—", "connections"],
      ["Mirror sent/s", fmtNum(readings.rateNow("sent|*")), "mirror-rate"],
      ["Mirror buffered", g ? fmtBytes(g.buffered) : "—", "buffered"],
      ["Breakers open", g ? fmtNum(g.breakers) : "—", "breakers"],
      ["Reloads ok / failed", g ? `${fmtNum(g.reloads.applied || 0)} / ${fmtNum(g.reloads.failed || 0)}` : "—", "reloads"],
      ["Resources", String(items.length), "resources"],
      ["Conditions not fine", String(problems.length), "problems"],
    ];
    $("#overview").replaceChildren(...cards.map(([label, value, field]) =>
      el("div", null, el("dt", null, label), el("dd", { "data-field": field }, value))));
    const notices = [];
    const reloadError = state.status && state.status.lastReloadError;
    if (reloadError) {
      notices.push(el("div", { class: "notice bad", role: "alert" },
        `Last reload failed${reloadError.time ? " at " + fmtTime(reloadError.time) : ""}; the previous configuration keeps serving.`,
        el("pre", null, (reloadError.errors || []).join("\n"))));
    }
    if (state.mirrorsError) notices.push(el("div", { class: "notice", id: "mirrors-missing" }, state.mirrorsError));
    for (const p of problems.slice(0, 4)) notices.push(el("div", { class: "notice" }, p));
    if (problems.length > 4) notices.push(el("div", { class: "notice" }, `… and ${problems.length - 4} more on /status`));
    $("#notices").replaceChildren(...notices);
  }
  const NEGATIVE = new Set(["Conflicted"]);
  function statusProblems(items) {
    const out = [];
    const check = (who, conditions) => {
      for (const c of conditions || []) {
        const bad = NEGATIVE.has(c.type) ? c.status === "True" : c.status === "False";
        if (bad) out.push(`${who}: ${c.type}=${c.status} (${c.reason}) ${c.message || ""}`);
      }
    };
    for (const item of items) {
      const md = item.metadata || {};
      const who = `${item.kind} ${md.namespace ? md.namespace + "/" : ""}${md.name}`;
      const st = item.status || {};
      check(who, st.conditions);
      for (const l of st.listeners || []) check(`${who} listener ${l.name}`, l.conditions);
      for (const p of st.parents || []) check(`${who} parent ${(p.parentRef || {}).name}`, p.conditions);
      for (const a of st.ancestors || []) check(`${who} ancestor ${(a.ancestorRef || {}).name}`, a.conditions);
    }
    return out;
  }

  // One entry per mirror, from the configuration, the metrics and /mirrors together.
  function mirrorView() {
    const view = new Map();
    const entry = (name) => {
      let v = view.get(name);
      if (!v) view.set(name, (v = { name, config: null, metrics: null, doc: null }));
      return v;
    };
    if (state.config) for (const m of state.config.mirrors.values()) entry(m.name).config = m;
    if (state.metrics) for (const m of state.metrics.mirrors.values()) entry(m.name).metrics = m;
    for (const m of (state.mirrorsDoc && state.mirrorsDoc.mirrors) || []) if (m && m.mirror) entry(m.mirror).doc = m;
    return view;
  }

  function renderRoutes(view) {
    const rules = state.config ? state.config.rules : [];
    const sorted = [...rules].sort((a, b) => (b.mirrors.length > 0) - (a.mirrors.length > 0));
    const rows = sorted.slice(0, MAX_ROWS).map((rule) => {
      let rateCell;
      if (!rule.mirrors.length) {
        rateCell = el("span", { class: "sub", "data-field": "rate" }, "not counted (no mirror)");
      } else {
        rateCell = sparkCell("rule|" + rule.name, `requests of ${rule.name}`, "#0b5cad");
      }
      return el("tr", { "data-rule": rule.name },
        el("td", null, el("span", { class: "name" }, breakable(rule.name)), el("div", { class: "sub" }, [...rule.hosts].join(", "))),
        el("td", null, rule.matches.slice(0, 4).map((m) => el("span", { class: "tag name" }, m)),
          rule.matches.length > 4 ? el("span", { class: "sub" }, `+${rule.matches.length - 4}`) : null),
        el("td", null, rule.backends.map((b) => el("div", { class: "name" }, breakable(b.name), rule.backends.length > 1 ? el("span", { class: "sub" }, ` weight ${b.weight}`) : null))),
        el("td", null, rule.mirrors.length ? rule.mirrors.map((m) => {
          const c = view.get(m) && view.get(m).config;
          return el("div", { class: "name" }, breakable(c ? c.backend : m), c ? el("span", { class: "sub nowrap" }, ` ${fmtNum(c.ppm / 10000)}%`) : null);
        }) : el("span", { class: "sub" }, "none")),
        el("td", null, rateCell));
    });
    if (sorted.length > MAX_ROWS) rows.push(el("tr", null, el("td", { colspan: 5, class: "sub" }, `${sorted.length - MAX_ROWS} more rules not shown`)));
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: 5, class: "sub" }, state.config ? "no routes are served" : "reading /config_dump…")));
    $("#routes tbody").replaceChildren(...rows);
  }

  function renderMirrors(view) {
    const rows = [...view.values()].slice(0, MAX_ROWS).map((v) => {
      const m = v.metrics, c = v.config, d = v.doc, cmp = d && d.compare;
      const dropped = Object.entries((m && m.dropped) || (d && d.dropped) || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
      const completed = Object.entries((m && m.completed) || (d && d.completed) || {}).sort();
      const backend = (c && c.backend) || (m && m.backend) || (d && d.backend) || "";
      const policy = (c && c.policy) || (d && d.policy);
      return el("tr", { "data-mirror": v.name },
        el("td", null, el("div", { class: "name" }, breakable(v.name)), el("div", { class: "sub" }, "→ ", el("span", { class: "name" }, breakable(backend)),
          c ? ` · ${fmtNum(c.ppm / 10000)}%` : null), policy ? el("span", { class: "tag" }, "policy ", policy) : null,
          state.config && !c ? el("div", { class: "sub" }, "not in the configuration served now") : null),
        el("td", null, sparkCell("sent|" + v.name, `mirror requests sent by ${v.name}`, "#8a3ffc")),
        el("td", { class: "num", "data-field": "sent" }, fmtNum(m ? m.sent : d ? d.sent : null)),
        el("td", { class: "num", "data-field": "sampled-out" }, fmtNum(m ? m.sampledOut : d ? d.sampledOut : null)),
        el("td", { "data-field": "completed" }, completed.length ? completed.map(([k, n]) => el("span", { class: "tag" }, `${k} ${fmtNum(n)}`)) : "—"),
        el("td", { "data-field": "dropped" }, dropped.length ? bars(dropped, "#b3261e", "dropped") : el("span", { class: "sub" }, "none")),
        el("td", { "data-field": "latency" }, latencyCell(v.name, cmp)),
        el("td", { "data-field": "match" }, matchCell(cmp)));
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: 8, class: "sub" }, "no mirror is configured")));
    $("#mirrors tbody").replaceChildren(...rows);
  }
  function latencyCell(name, cmp) {
    const lat = cmp && cmp.latencyMs;
    const hist = mirrorLatency(name);
    const mirror = lat && lat.mirror && lat.mirror.p50 !== null && lat.mirror.p50 !== undefined ? lat.mirror : hist;
    const primary = lat && lat.primary;
    const pair = (x) => x && x.p50 !== null && x.p50 !== undefined ? `${fmtMs(x.p50)} / ${fmtMs(x.p99)}` : "—";
    return el("div", { class: "lat" },
      el("span", { class: "p" }, "primary"), el("span", { "data-field": "primary-latency", title: primary ? "" : "measured by compare only" }, pair(primary)),
      el("span", { class: "m" }, "mirror"), el("span", { "data-field": "mirror-latency" }, pair(mirror),
        mirror === hist && hist && !hist.recent ? el("span", { class: "sub" }, " all time") : null));
  }
  function matchCell(cmp) {
    if (!cmp) return el("span", { class: "sub" }, "not compared");
    const rate = cmp.matchRate;
    const mm = cmp.mismatches || {};
    return el("div", null,
      el("div", { class: rate === null || rate === undefined ? "" : rate >= 0.999 ? "rate-ok" : "rate-bad", "data-field": "match-rate" },
        rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(rate >= 0.999 || rate < 0.001 ? 0 : 1)}%`),
      el("div", { class: "sub" }, `${fmtNum(cmp.matched)} of ${fmtNum(cmp.compared)} matched`),
      Object.entries(mm).some(([, n]) => n > 0)
        ? el("div", { class: "sub" }, "mismatch: ", Object.entries(mm).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${fmtNum(n)}`).join(", "))
        : null,
      Object.entries(cmp.mirrorFailed || {}).filter(([, n]) => n > 0).length
        ? el("div", { class: "sub" }, "mirror failed: ", Object.entries(cmp.mirrorFailed).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${fmtNum(n)}`).join(", "))
        : null);
  }

  // ---- mismatches ----------------------------------------------------------------------------
  let optionsKey = "";
  function renderDiffs() {
    const compared = comparedMirrors();
    const note = $("#diffs-note");
    const select = $("#diff-mirror");
    const key = JSON.stringify(compared.map((m) => [m.id, m.mirror]));
    if (key !== optionsKey) {
      optionsKey = key;
      select.replaceChildren(...compared.map((m) => el("option", { value: String(m.id) }, m.mirror)));
    }
    $("#diff-nav").hidden = !compared.length;
    if (state.selectedMirror !== null && select.value !== String(state.selectedMirror)) select.value = String(state.selectedMirror);
    if (!compared.length) {
      note.textContent = state.mirrorsError
        ? "Mismatches come from /mirrors, which this gateway does not serve."
        : "No mirror compares its responses (a MirrorPolicy with compare turns it on).";
      if (state.diffsKey !== "") { state.diffsKey = ""; $("#diff-list").replaceChildren(); $("#diff").replaceChildren(); }
      return;
    }
    const diffs = (state.diffs && Array.isArray(state.diffs.diffs)) ? state.diffs.diffs : [];
    note.textContent = diffs.length ? `${diffs.length} kept for this mirror, newest first.` : "No mismatch kept for this mirror.";
    const dkey = JSON.stringify([state.selectedMirror, diffs, state.selectedDiff]);
    if (dkey === state.diffsKey) return; // unchanged: keep the list (and the keyboard focus in it)
    state.diffsKey = dkey;
    const ordered = diffs.map((d) => ({ d, k: diffKey(d) })); // the server sends the newest first
    if (!ordered.some((o) => o.k === state.selectedDiff)) state.selectedDiff = ordered.length ? ordered[0].k : null;
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.diff : undefined;
    $("#diff-list").replaceChildren(...ordered.map(({ d, k }) => {
      const req = d.request || {};
      const button = el("button", { type: "button", "data-diff": k, "aria-current": k === state.selectedDiff ? "true" : "false" },
        el("div", { class: "name" }, `${req.method || ""} ${req.target || ""}`),
        el("div", { class: "sub" }, fmtTime(d.time), " · ", (d.kinds || []).join(", ")));
      button.addEventListener("click", () => { state.selectedDiff = k; state.diffsKey = ""; renderDiffs(); });
      return el("li", null, button);
    }));
    if (focused !== undefined) {
      const again = [...document.querySelectorAll("#diff-list button")].find((b) => b.dataset.diff === focused);
      if (again) again.focus();
    }
    const chosen = ordered.find((o) => o.k === state.selectedDiff);
    $("#diff").replaceChildren(chosen ? diffView(chosen.d) : "");
  }
  function diffKey(d) {
    // stable while newer mismatches push it down the list (an index would not be)
    return JSON.stringify([d.requestId ?? null, d.time ?? null, (d.request || {}).target ?? null]);
  }
  function diffView(d) {
    const differences = Array.isArray(d.differences) ? d.differences : [];
    const headerNames = new Set(differences.filter((x) => x.kind === "header" && x.name).map((x) => String(x.name).toLowerCase()));
    const paths = new Set(differences.filter((x) => x.path !== undefined && x.path !== null).map((x) => String(x.path)));
    const statusDiffers = differences.some((x) => x.kind === "status");
    const bodyDiffers = differences.some((x) => x.kind === "body" && (x.path === undefined || x.path === null));
    const req = d.request || {};
    const side = (which, r) => {
      r = r || {};
      const hdrs = pairs(r.headers);
      return el("section", { class: `side ${which}`, "aria-label": `${which} response`, "data-side": which },
        el("h3", null, which === "primary" ? "Primary" : "Mirror"),
        el("p", null, "status ", el("span", { class: statusDiffers ? "differs" : "", "data-field": "status" }, r.status ?? "—"),
          el("span", { class: "sub" }, r.latencyMs !== undefined && r.latencyMs !== null ? ` · ${fmtMs(r.latencyMs)} ms` : "")),
        el("table", null, el("caption", { class: "sr-only" }, `${which} response headers`),
          el("tbody", null, hdrs.map(([n, v]) => el("tr", { class: headerNames.has(n.toLowerCase()) ? "differs" : "", "data-header": n.toLowerCase() },
            el("th", { scope: "row" }, n), el("td", null, v))))),
        bodyView(r, paths, bodyDiffers));
    };
    return el("article", { "data-request-id": d.requestId ?? "" },
      el("p", { class: "diff-head" }, el("strong", { class: "name" }, `${req.method || ""} ${req.target || ""}`),
        el("span", { class: "sub" }, ` · ${fmtTime(d.time)} · request id ${d.requestId ?? "—"}`)),
      differences.length ? el("ul", { class: "differences", "aria-label": "Differences" }, differences.map((x) => el("li", null,
        el("strong", null, x.kind), " ", x.name ?? x.path ?? "", ": ",
        el("mark", { class: "differs" }, show(x, "primary")), " → ", el("mark", { class: "differs" }, show(x, "mirror"))))) : null,
      el("details", null, el("summary", null, "Request headers"),
        el("table", { class: "request-headers" }, el("tbody", null, pairs(req.headers).map(([n, v]) =>
          el("tr", null, el("th", { scope: "row" }, n), el("td", null, v)))))),
      el("div", { class: "sides" }, side("primary", d.primary), side("mirror", d.mirror)));
  }
  // One side's value of a difference; ``absent`` names the side that lacks the header or member.
  function show(x, which) {
    const v = x[which];
    if (x.absent === which || v === undefined) return "(absent)";
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function bodyView(r, paths, whole) {
    if (r.body === undefined || r.body === null) return el("p", { class: "sub" }, "no body kept");
    const notes = [];
    if (r.bodyEncoding && r.bodyEncoding !== "utf-8" && r.bodyEncoding !== "utf8" && r.bodyEncoding !== "text") notes.push(String(r.bodyEncoding));
    if (r.bodyTruncated) notes.push("truncated");
    let parsed;
    let isJson = false;
    if (typeof r.body === "string" && !notes.length) {
      try { parsed = JSON.parse(r.body); isJson = typeof parsed === "object" && parsed !== null; } catch (e) { isJson = false; }
    } else if (typeof r.body === "object") { parsed = r.body; isJson = true; }
    const pre = el("pre", { class: whole ? "differs" : "", "data-field": "body" });
    if (isJson) jsonInto(pre, parsed, "$", paths, 0); else pre.textContent = typeof r.body === "string" ? r.body : JSON.stringify(r.body);
    return el("div", null, notes.length ? el("div", { class: "sub" }, "body (", notes.join(", "), ")") : null, pre);
  }

  // ---- wiring --------------------------------------------------------------------------------
  function start() {
    $("#diff-mirror").addEventListener("change", (e) => {
      state.selectedMirror = comparedMirrors().map((m) => m.id).find((id) => String(id) === e.target.value) ?? null;
      state.selectedDiff = null;
      state.diffsKey = "";
      pollDiffs().then(render);
    });
    const loop = async () => {
      try {
        await poll();
        delete state.errors.poll;
      } catch (e) {
        state.errors.poll = String(e.message || e);
      }
      setTimeout(loop, POLL_MS);
      try {
        render();
      } catch (e) {
        $("#state").textContent = "cannot draw: " + (e.message || e);
        throw e; // reported as an uncaught error; the next poll draws again
      }
    };
    loop();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
