// artifact-gateway UI: the compare view's charts, drawn on canvases by this file (no build step):
// a parallel-coordinates plot of chosen params and metrics (one line per run), a scatter of one
// param/metric against another, and a bar chart of a metric across the runs. The choices live in the
// URL (?pc=params.lr&pc=metrics.loss&sx=...&sy=...&bar=...), so a view can be shared.
(function () {
  "use strict";

  const COLORS = ["#0b61a4", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];
  const FONT = "12px system-ui, sans-serif";
  window.gatewayCompare = {};

  function valueOf(run, column) {
    const dot = column.indexOf(".");
    const kind = column.slice(0, dot);
    const key = column.slice(dot + 1);
    const values = run[kind] || {};
    return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : null;
  }

  function asNumber(v) {
    if (v === null || v === "") return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }

  // An axis over the runs' values of `column`: numeric when every value present is a number, else categories.
  function axis(runs, column) {
    const raw = runs.map((run) => valueOf(run, column));
    const present = raw.filter((v) => v !== null);
    const numeric = present.length > 0 && present.every((v) => asNumber(v) !== null);
    if (numeric) {
      const nums = present.map(asNumber);
      let lo = Math.min.apply(null, nums);
      let hi = Math.max.apply(null, nums);
      if (lo === hi) { lo -= 1; hi += 1; }
      return { column, numeric, lo, hi, position: (v) => (v === null ? null : (asNumber(v) - lo) / (hi - lo)), label: (t) => format(lo + t * (hi - lo)) };
    }
    const categories = Array.from(new Set(present.map(String))).sort();
    const step = categories.length > 1 ? 1 / (categories.length - 1) : 0;
    return { column, numeric, categories, position: (v) => (v === null ? null : categories.length > 1 ? categories.indexOf(String(v)) * step : 0.5) };
  }

  function format(n) {
    return Math.abs(n) >= 1e4 || (Math.abs(n) < 1e-3 && n !== 0) ? n.toExponential(2) : String(Number(n.toPrecision(4)));
  }

  function canvasIn(holder, height) {
    holder.textContent = "";
    const canvas = document.createElement("canvas");
    const width = Math.max(320, holder.clientWidth || 640);
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    holder.append(canvas);
    const context = canvas.getContext("2d");
    context.scale(ratio, ratio);
    context.font = FONT;
    return { canvas, context, width, height };
  }

  function short(text, max) {
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  function parallel(runs, columns, holder) {
    const { canvas, context, width, height } = canvasIn(holder, 320);
    const axes = columns.map((column) => axis(runs, column));
    const top = 34, bottom = height - 24, left = 60, right = width - 60;
    const x = (i) => (axes.length > 1 ? left + (i * (right - left)) / (axes.length - 1) : (left + right) / 2);
    const y = (t) => bottom - t * (bottom - top);
    context.strokeStyle = "#9aa5b1";
    context.fillStyle = "#1d232b";
    context.textAlign = "center";
    axes.forEach((a, i) => {
      context.beginPath();
      context.moveTo(x(i), top);
      context.lineTo(x(i), bottom);
      context.stroke();
      context.fillText(short(a.column.replace(/^(params|metrics)\./, ""), 22), x(i), 14);
      context.fillStyle = "#5d6875";
      if (a.numeric) {
        context.fillText(a.label(1), x(i), top - 6);
        context.fillText(a.label(0), x(i), bottom + 14);
      } else {
        a.categories.forEach((c) => context.fillText(short(c, 14), x(i), y(a.position(c)) - 4));
      }
      context.fillStyle = "#1d232b";
    });
    const lines = [];
    runs.forEach((run, r) => {
      const points = axes.map((a, i) => {
        const t = a.position(valueOf(run, a.column));
        return t === null ? null : [x(i), y(t)];
      });
      context.strokeStyle = COLORS[r % COLORS.length];
      context.lineWidth = 2;
      context.beginPath();
      let drawing = false;
      for (const p of points) {
        if (p === null) { drawing = false; continue; }
        if (drawing) context.lineTo(p[0], p[1]);
        else context.moveTo(p[0], p[1]);
        drawing = true;
      }
      context.stroke();
      lines.push({ run: run.id, points });
    });
    const legend = document.createElement("p");
    legend.className = "plot-legend";
    runs.forEach((run, r) => {
      const item = document.createElement("span");
      item.style.borderColor = COLORS[r % COLORS.length];
      item.textContent = run.name;
      legend.append(item);
    });
    holder.append(legend);
    canvas.dataset.lines = String(lines.length);
    canvas.dataset.axes = columns.join(",");
    return { columns, lines };
  }

  function scatter(runs, xColumn, yColumn, holder) {
    const { canvas, context, width, height } = canvasIn(holder, 300);
    const ax = axis(runs, xColumn), ay = axis(runs, yColumn);
    const left = 60, right = width - 70, top = 16, bottom = height - 40;
    context.strokeStyle = "#9aa5b1";
    context.strokeRect(left, top, right - left, bottom - top);
    context.fillStyle = "#5d6875";
    context.textAlign = "center";
    context.fillText(xColumn, (left + right) / 2, height - 8);
    if (ax.numeric) { context.fillText(ax.label(0), left, bottom + 14); context.fillText(ax.label(1), right, bottom + 14); }
    context.save();
    context.translate(12, (top + bottom) / 2);
    context.rotate(-Math.PI / 2);
    context.fillText(yColumn, 0, 0);
    context.restore();
    context.textAlign = "right";
    if (ay.numeric) { context.fillText(ay.label(1), left - 4, top + 10); context.fillText(ay.label(0), left - 4, bottom); }
    const points = [];
    const pad = (t) => 0.05 + 0.9 * t;
    runs.forEach((run, r) => {
      const tx = ax.position(valueOf(run, xColumn)), ty = ay.position(valueOf(run, yColumn));
      if (tx === null || ty === null) return;
      const px = left + pad(tx) * (right - left), py = bottom - pad(ty) * (bottom - top);
      context.fillStyle = COLORS[r % COLORS.length];
      context.beginPath();
      context.arc(px, py, 5, 0, 2 * Math.PI);
      context.fill();
      context.textAlign = "left";
      context.fillText(short(run.name, 20), px + 7, py - 5);
      points.push({ run: run.id, x: px, y: py });
    });
    canvas.dataset.points = String(points.length);
    return { x: xColumn, y: yColumn, points };
  }

  function bars(runs, column, holder) {
    const { canvas, context, width, height } = canvasIn(holder, 260);
    const values = runs.map((run) => asNumber(valueOf(run, column)));
    const present = values.filter((v) => v !== null);
    const lo = Math.min(0, ...present), hi = Math.max(0, ...present);
    const span = hi - lo || 1;
    const left = 60, right = width - 20, top = 16, bottom = height - 40;
    const slot = (right - left) / Math.max(1, runs.length);
    const y = (v) => bottom - ((v - lo) / span) * (bottom - top);
    context.strokeStyle = "#9aa5b1";
    context.beginPath();
    context.moveTo(left, y(0));
    context.lineTo(right, y(0));
    context.stroke();
    const drawn = [];
    runs.forEach((run, r) => {
      const v = values[r];
      const cx = left + slot * r + slot * 0.15;
      context.fillStyle = "#5d6875";
      context.textAlign = "center";
      context.fillText(short(run.name, Math.max(6, Math.floor(slot / 8))), cx + slot * 0.35, height - 20);
      if (v === null) return;
      context.fillStyle = COLORS[r % COLORS.length];
      const y0 = y(0), y1 = y(v);
      context.fillRect(cx, Math.min(y0, y1), slot * 0.7, Math.max(1, Math.abs(y1 - y0)));
      context.fillStyle = "#1d232b";
      context.fillText(format(v), cx + slot * 0.35, Math.min(y0, y1) - 4);
      drawn.push({ run: run.id, value: v, height: Math.abs(y1 - y0) });
    });
    canvas.dataset.bars = String(drawn.length);
    return { column, bars: drawn };
  }

  function option(select, value, label) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label || value;
    select.append(o);
  }

  function setup() {
    const block = document.getElementById("compare-data");
    if (!block) return;
    const data = JSON.parse(block.textContent);
    const runs = data.runs;
    const columns = data.params.map((k) => "params." + k).concat(data.metrics.map((k) => "metrics." + k));
    const params = new URLSearchParams(location.search);
    const known = (c) => columns.indexOf(c) >= 0;
    let chosen = params.getAll("pc").filter(known);
    if (!chosen.length) chosen = data.default_axes.filter(known);
    if (!columns.length) return; // the template shows no charts then
    const firstMetric = data.metrics.length ? "metrics." + data.metrics[0] : null;
    const state = {
      pc: chosen,
      sx: known(params.get("sx")) ? params.get("sx") : columns[0],
      sy: known(params.get("sy")) ? params.get("sy") : firstMetric || columns[columns.length - 1],
      bar: known(params.get("bar")) && params.get("bar").startsWith("metrics.") ? params.get("bar") : firstMetric,
    };

    function save() {
      const url = new URL(location.href);
      for (const name of ["pc", "sx", "sy", "bar"]) url.searchParams.delete(name);
      for (const c of state.pc) url.searchParams.append("pc", c);
      url.searchParams.set("sx", state.sx);
      url.searchParams.set("sy", state.sy);
      if (state.bar) url.searchParams.set("bar", state.bar);
      window.history.replaceState(null, "", url);
      // The page's own links (e.g. "show only differences") keep the charts' choices.
      for (const link of document.querySelectorAll('a[href^="?"][href*="only_differences"]')) {
        const target = new URL(link.getAttribute("href"), url);
        const kept = new URL(url);
        kept.searchParams.set("only_differences", target.searchParams.get("only_differences"));
        link.setAttribute("href", kept.search);
      }
    }

    const picker = document.getElementById("pc-axes");
    for (const c of columns) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = c;
      box.checked = state.pc.indexOf(c) >= 0;
      box.addEventListener("change", () => {
        state.pc = columns.filter((k) => picker.querySelector('input[value="' + CSS.escape(k) + '"]').checked);
        save();
        drawAll();
      });
      label.append(box, " " + c);
      picker.append(label);
    }
    const sx = document.getElementById("scatter-x"), sy = document.getElementById("scatter-y"), bar = document.getElementById("bar-metric");
    for (const c of columns) { option(sx, c); option(sy, c); }
    if (bar) for (const k of data.metrics) option(bar, "metrics." + k, k);
    sx.value = state.sx;
    sy.value = state.sy;
    if (bar) bar.value = state.bar;
    sx.addEventListener("change", () => { state.sx = sx.value; save(); drawAll(); });
    sy.addEventListener("change", () => { state.sy = sy.value; save(); drawAll(); });
    if (bar) bar.addEventListener("change", () => { state.bar = bar.value; save(); drawAll(); });

    function drawAll() {
      window.gatewayCompare.parallel = parallel(runs, state.pc, document.getElementById("parallel-plot"));
      window.gatewayCompare.scatter = scatter(runs, state.sx, state.sy, document.getElementById("scatter-plot"));
      const barPlot = document.getElementById("bar-plot");
      window.gatewayCompare.bars = state.bar && barPlot ? bars(runs, state.bar, barPlot) : null;
      document.body.dataset.compareReady = "true";
    }
    save();
    drawAll();
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
