// mirrorgate admin dashboard, the parts that hold no state of the page: building DOM nodes from
// untrusted text, the Prometheus text format, counter history and rates, number formats, SVG
// charts, histogram quantiles, and JSON shown with differing paths marked.
//
// Rule: data is put in the document as text nodes and attribute values only (never parsed as
// markup); attributes named on* are refused. Everything is exported as MirrorgateDashboard.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";

  // ---- DOM helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, kids);
    return node;
  }
  function svg(tag, attrs, ...kids) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, kids);
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) throw new Error("event handler attributes are never set: " + k);
      node.setAttribute(k, String(v));
    }
  }
  function append(node, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
  }

  // ---- Prometheus text exposition (format 0.0.4) ---------------------------------------------
  function parseNumber(text) {
    if (text === "+Inf" || text === "Inf") return Infinity;
    if (text === "-Inf") return -Infinity;
    return Number(text);
  }
  function parseProm(text) {
    const samples = [];
    for (const line of text.split("\n")) {
      if (line === "" || line[0] === "#") continue;
      let i = 0;
      while (i < line.length && line[i] !== "{" && line[i] !== " " && line[i] !== "\t") i++;
      const name = line.slice(0, i);
      const labels = {};
      if (line[i] === "{") {
        i++;
        for (;;) {
          while (line[i] === " " || line[i] === ",") i++;
          if (i >= line.length) throw new Error("unterminated labels: " + line);
          if (line[i] === "}") { i++; break; }
          const eq = line.indexOf("=", i);
          if (eq < 0 || line[eq + 1] !== '"') throw new Error("bad label: " + line);
          const key = line.slice(i, eq).trim();
          let value = "";
          i = eq + 2;
          while (i < line.length && line[i] !== '"') {
            if (line[i] === "\\" && i + 1 < line.length) {
              const c = line[i + 1];
              value += c === "n" ? "\n" : c;
              i += 2;
            } else {
              value += line[i++];
            }
          }
          if (line[i] !== '"') throw new Error("unterminated label value: " + line);
          i++;
          labels[key] = value;
        }
      }
      const fields = line.slice(i).trim().split(/\s+/);
      samples.push({ name, labels, value: parseNumber(fields[0]) });
    }
    return samples;
  }

  // ---- history and rates ---------------------------------------------------------------------
  // Readings of counters by key, the last ``size`` of each. A counter that went down restarted: its
  // new value is the delta. A key first recorded after the first poll gets ``before`` (default 0
  // for a number) at the previous poll: the gateway creates a mirror's series on its first request.
  class History {
    constructor(size) {
      this.size = size;
      this.byKey = new Map(); // key -> [{t, v}]
      this.previousPoll = null;
    }
    record(key, t, v, before = typeof v === "number" ? 0 : undefined) {
      let h = this.byKey.get(key);
      if (!h) {
        this.byKey.set(key, (h = []));
        if (this.previousPoll !== null && before !== undefined) h.push({ t: this.previousPoll, v: before });
      }
      h.push({ t, v });
      if (h.length > this.size) h.shift();
    }
    endPoll(t) {
      this.previousPoll = t;
    }
    get(key) {
      return this.byKey.get(key) || [];
    }
    static delta(a, b) {
      return b.v >= a.v ? b.v - a.v : b.v;
    }
    rates(key) {
      const h = this.get(key);
      const out = [];
      for (let i = 1; i < h.length; i++) out.push(History.delta(h[i - 1], h[i]) / Math.max(h[i].t - h[i - 1].t, 1e-3));
      return out;
    }
    rateNow(key) {
      const h = this.get(key);
      if (h.length < 2) return null;
      const start = Math.max(0, h.length - 4); // about the last 3 s
      let sum = 0;
      for (let i = start + 1; i < h.length; i++) sum += History.delta(h[i - 1], h[i]);
      return sum / Math.max(h[h.length - 1].t - h[start].t, 1e-3);
    }
    valueAt(key, t) {
      const h = this.get(key);
      for (let i = h.length - 1; i >= 0; i--) if (h[i].t === t) return h[i].v;
      return 0;
    }
  }

  // ---- formatting ----------------------------------------------------------------------------
  // A long name as text that may wrap after each "/" (and nowhere else).
  function breakable(text) {
    const parts = String(text).split("/");
    return parts.flatMap((p, i) => (i < parts.length - 1 ? [p + "/", el("wbr")] : [p]));
  }
  function fmtNum(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "—";
    if (!Number.isFinite(n)) return n > 0 ? "∞" : "-∞";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
    if (Number.isInteger(n)) return String(n);
    return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
  }
  function fmtMs(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "—";
    return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
  }
  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }
  function fmtTime(t) {
    if (typeof t === "number") {
      const d = new Date(t < 1e12 ? t * 1000 : t);
      return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().slice(11, 23);
    }
    const text = String(t ?? "");
    const iso = /^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(text);
    return iso ? iso[1] : text;
  }

  // ---- charts --------------------------------------------------------------------------------
  function sparkline(values, label, colour, slots) {
    const w = 90, h = 22;
    const max = Math.max(1e-9, ...values);
    const slot = w / slots;
    // one bar per poll interval, right-aligned: the newest at the right edge
    return svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": label },
      svg("title", null, label),
      svg("line", { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5, stroke: "#8c959f", "stroke-width": 1 }),
      values.map((v, i) => v > 0 ? svg("rect", {
        x: ((i + slots - values.length) * slot).toFixed(2), width: Math.max(slot - 0.3, 0.8).toFixed(2),
        y: (h - 1 - (v / max) * (h - 2)).toFixed(2), height: ((v / max) * (h - 2)).toFixed(2), fill: colour,
      }) : null));
  }
  function bars(entries, colour, what) {
    const max = Math.max(1, ...entries.map(([, n]) => n));
    return el("div", { class: "bars" }, entries.map(([name, n]) => [
      el("span", { "data-reason": name }, name),
      svg("svg", { width: 80, height: 10, role: "img", "aria-label": `${what} ${name}: ${n}` },
        svg("rect", { x: 0, y: 1, width: Math.max(1, (n / max) * 80).toFixed(1), height: 8, fill: colour })),
      el("span", { class: "num", "data-count": name }, fmtNum(n)),
    ]));
  }


  function matchText(m) {
    const parts = [];
    if (m.method) parts.push(m.method);
    const type = m.pathType || "PathPrefix";
    parts.push(type === "PathPrefix" ? (m.path || "") + "/*" : type === "Exact" ? m.path : "~" + m.path);
    for (const h of m.headers || []) parts.push(`${h.name}${h.type === "RegularExpression" ? "~" : "="}${h.value}`);
    for (const q of m.queryParams || []) parts.push(`?${q.name}${q.type === "RegularExpression" ? "~" : "="}${q.value}`);
    return parts.join(" ");
  }

  // Prometheus' histogram_quantile over cumulative (le, count) pairs.
  function quantile(q, buckets) {
    if (!buckets.length) return null;
    const count = buckets[buckets.length - 1][1];
    if (count <= 0) return null;
    const rank = q * count;
    let prevLe = 0, prevCount = 0;
    for (const [le, c] of buckets) {
      if (c >= rank) {
        if (!Number.isFinite(le)) return prevLe;
        if (c === prevCount) return le;
        return prevLe + (le - prevLe) * (rank - prevCount) / (c - prevCount);
      }
      prevLe = le; prevCount = c;
    }
    return prevLe;
  }

  function pairs(headers) {
    if (Array.isArray(headers)) return headers.filter((h) => Array.isArray(h)).map(([n, v]) => [String(n), String(v)]);
    if (headers && typeof headers === "object") return Object.entries(headers).flatMap(([n, v]) => (Array.isArray(v) ? v : [v]).map((x) => [n, String(x)]));
    return [];
  }

  // Pretty JSON with the values at differing JSON paths highlighted; paths as the compare writes them:
  // $.a.b[0], $['a key'] (a quote or backslash in a name escaped with a backslash).
  function childPath(base, key) {
    if (typeof key === "number") return `${base}[${key}]`;
    if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${base}.${key}`;
    return `${base}['${key.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}']`;
  }

  function jsonInto(node, v, path, paths, depth) {
    const pad = "  ".repeat(depth);
    const mark = paths.has(path);
    const target = mark ? el("mark", { class: "differs", "data-path": path }) : node;
    if (Array.isArray(v) || (v && typeof v === "object")) {
      const arr = Array.isArray(v);
      const entries = arr ? v.map((x, i) => [i, x]) : Object.entries(v);
      target.append(arr ? "[" : "{");
      entries.forEach(([k, x], i) => {
        target.append("\n" + pad + "  " + (arr ? "" : JSON.stringify(k) + ": "));
        jsonInto(target, x, childPath(path, k), paths, depth + 1);
        if (i < entries.length - 1) target.append(",");
      });
      target.append((entries.length ? "\n" + pad : "") + (arr ? "]" : "}"));
    } else {
      target.append(JSON.stringify(v));
    }
    if (mark) node.append(target);
  }

  globalThis.MirrorgateDashboard = Object.freeze({ el, svg, breakable, parseNumber, parseProm, History, fmtNum, fmtMs, fmtBytes, fmtTime, sparkline, bars, matchText, quantile, pairs, childPath, jsonInto });
})();
