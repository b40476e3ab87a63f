// artifact-gateway UI: metric charts (uPlot) and MLflow-style #/ links. No inline scripts: data comes from
// <script type="application/json" id="chart-data"> and from the tracking API.
(function () {
  "use strict";

  // The mlflow client prints links like http://host/#/experiments/1/runs/<id> and #/models/<name>/versions/<v>;
  // open the same page here.
  if (location.pathname === "/" && /^#\/(experiments\/|models(\/|$))/.test(location.hash)) {
    location.replace(location.hash.slice(1));
    return;
  }

  const HISTORY = "/ajax-api/2.0/mlflow/metrics/get-history";
  const BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk";
  // The server's limits, from the page's chart data: a get-history page and all a get-history-bulk
  // answer holds (it has no pages), and get-history-bulk's most run ids in one request.
  let MAX_POINTS = 0;
  let BULK_RUNS = 0;
  const COLORS = ["#0b61a4", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];
  window.gatewayCharts = {};

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || response.statusText);
    return body;
  }

  // One run's points of one metric, page by page.
  async function history(runId, key) {
    const points = [];
    let token = "";
    do {
      const url = new URL(HISTORY, location.origin);
      url.searchParams.set("run_id", runId);
      url.searchParams.set("metric_key", key);
      url.searchParams.set("max_results", String(MAX_POINTS));
      if (token) url.searchParams.set("page_token", token);
      const body = await getJson(url);
      for (const point of body.metrics || []) points.push(point); // not push(...): that is one argument per point
      token = body.next_page_token || "";
    } while (token);
    return points;
  }

  // Each run's points of one metric (in runIds' order): one get-history-bulk request per 100 runs. An
  // answer holding MAX_POINTS may have been cut short, so then its runs are read page by page instead.
  async function metricHistories(runIds, key) {
    const unique = Array.from(new Set(runIds));
    const chunks = [];
    for (let i = 0; i < unique.length; i += BULK_RUNS) chunks.push(unique.slice(i, i + BULK_RUNS));
    const byRun = new Map();
    await Promise.all(
      chunks.map(async (ids) => {
        const url = new URL(BULK, location.origin);
        for (const id of ids) url.searchParams.append("run_id", id);
        url.searchParams.set("metric_key", key);
        url.searchParams.set("max_results", String(MAX_POINTS));
        const points = (await getJson(url)).metrics || [];
        if (points.length >= MAX_POINTS) {
          const paged = await Promise.all(ids.map((id) => history(id, key)));
          ids.forEach((id, i) => byRun.set(id, paged[i]));
          return;
        }
        for (const id of ids) byRun.set(id, []);
        for (const point of points) if (byRun.has(point.run_id)) byRun.get(point.run_id).push(point);
      })
    );
    return runIds.map((id) => byRun.get(id));
  }

  function value(v) {
    const number = Number(v);
    return Number.isFinite(number) ? number : null; // NaN and infinities are gaps
  }

  // One [xs, ys] table per run for the chosen x axis, sorted by x as uPlot needs.
  function table(points, axis) {
    // A loop, not Math.min(...): spreading 200,000 points into arguments overflows the call stack.
    let start = points.length ? Infinity : 0;
    for (const p of points) if (p.timestamp < start) start = p.timestamp;
    const x = (p) => (axis === "step" ? p.step : axis === "time" ? p.timestamp / 1000 : (p.timestamp - start) / 1000);
    const sorted = points.slice().sort((a, b) => x(a) - x(b) || a.timestamp - b.timestamp);
    return [sorted.map(x), sorted.map((p) => value(p.value))];
  }

  // -- chart view: smoothing and log scale, kept in the URL (?smoothing=0.6&log=1) ------------------
  const view = { smoothing: 0, log: false };

  function readView() {
    const params = new URLSearchParams(location.search);
    const smoothing = Number(params.get("smoothing"));
    view.smoothing = Number.isFinite(smoothing) ? Math.min(Math.max(smoothing, 0), 0.99) : 0;
    view.log = params.get("log") === "1";
  }

  function writeView(axis) {
    const url = new URL(location.href);
    const set = (name, value) => (value ? url.searchParams.set(name, value) : url.searchParams.delete(name));
    set("smoothing", view.smoothing ? String(view.smoothing) : "");
    set("log", view.log ? "1" : "");
    set("x", axis !== "step" ? axis : "");
    window.history.replaceState(null, "", url);
  }

  // An exponential moving average, debiased at the start (as TensorBoard and MLflow draw it); gaps stay gaps.
  function smooth(ys, weight) {
    if (!weight) return ys;
    let last = 0;
    let count = 0;
    return ys.map((y) => {
      if (y === null) return null;
      last = last * weight + (1 - weight) * y;
      count++;
      return last / (1 - Math.pow(weight, count));
    });
  }

  function shown(tables) {
    return tables.map(([xs, ys]) => {
      let out = smooth(ys, view.smoothing);
      if (view.log) out = out.map((y) => (y !== null && y > 0 ? y : null)); // a log axis has no place for <= 0
      return [xs, out];
    });
  }

  // A metric with one point (per run) has nothing to draw: its value is shown instead of a one-dot chart.
  function drawValues(figure, runs, histories) {
    const holder = figure.querySelector(".plot");
    holder.textContent = "";
    figure.dataset.single = "true";
    const list = document.createElement("dl");
    list.className = "single-values";
    histories.forEach((points, i) => {
      if (!points.length) return;
      const name = document.createElement("dt");
      name.textContent = runs.length > 1 ? runs[i].name : "value";
      const number = document.createElement("dd");
      number.className = "single-value";
      number.textContent = String(points[0].value) + (points[0].step ? "  (step " + points[0].step + ")" : "");
      list.append(name, number);
    });
    holder.append(list);
  }

  function draw(figure, key, runs, histories, axis) {
    const holder = figure.querySelector(".plot");
    holder.textContent = "";
    const count = histories.reduce((n, points) => n + points.length, 0);
    figure.querySelector(".chart-note").textContent = count + " point" + (count === 1 ? "" : "s");
    const tables = histories.map((points) => table(points, axis));
    window.gatewayCharts[key] = { axis: axis, runs: runs.map((r) => r.id), tables: tables, points: histories };
    if (count && histories.every((points) => points.length <= 1)) {
      drawValues(figure, runs, histories);
      return;
    }
    delete figure.dataset.single;
    const drawn = shown(tables);
    const data = drawn.length === 1 ? drawn[0] : uPlot.join(drawn);
    const options = {
      width: Math.max(320, holder.clientWidth || 420),
      height: 220,
      scales: { x: { time: axis === "time" }, y: view.log ? { distr: 3 } : {} },
      series: [{ label: axis }].concat(
        runs.map((run, i) => ({ label: run.name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: tables[i][0].length < 60 } }))
      ),
      legend: { show: runs.length > 1 },
    };
    const plot = new uPlot(options, data, holder);
    Object.assign(window.gatewayCharts[key], { drawn: drawn, plot: plot, smoothing: view.smoothing, log: view.log });
  }

  // The smoothing slider and log-scale box, added beside the x-axis choice.
  function viewControls(select, redraw) {
    const bar = select.closest(".bar");
    const smoothing = document.createElement("label");
    smoothing.innerHTML = 'Smoothing <input type="range" id="smoothing" min="0" max="0.99" step="0.01"> <output id="smoothing-value"></output>';
    const log = document.createElement("label");
    log.innerHTML = '<input type="checkbox" id="log-scale"> Log scale';
    bar.append(smoothing, log);
    const slider = smoothing.querySelector("input");
    const value = smoothing.querySelector("output");
    const box = log.querySelector("input");
    slider.value = String(view.smoothing);
    value.textContent = String(view.smoothing);
    box.checked = view.log;
    slider.addEventListener("input", () => {
      view.smoothing = Number(slider.value);
      value.textContent = slider.value;
      writeView(select.value);
      redraw();
    });
    box.addEventListener("change", () => {
      view.log = box.checked;
      writeView(select.value);
      redraw();
    });
  }

  async function charts() {
    const block = document.getElementById("chart-data");
    if (!block) return;
    const chart = JSON.parse(block.textContent);
    const runs = chart.runs;
    MAX_POINTS = chart.max_points;
    BULK_RUNS = chart.bulk_runs;
    const select = document.getElementById("x-axis");
    readView();
    const axisParam = new URLSearchParams(location.search).get("x");
    if (select && axisParam && Array.from(select.options).some((o) => o.value === axisParam)) select.value = axisParam;
    const figures = Array.from(document.querySelectorAll("figure.chart"));
    const loaded = new Map();
    await Promise.all(
      figures.map(async (figure) => {
        const key = figure.dataset.metric;
        try {
          const histories = await metricHistories(runs.map((run) => run.id), key);
          loaded.set(figure, histories);
          draw(figure, key, runs, histories, select ? select.value : "step");
        } catch (error) {
          figure.querySelector(".chart-note").textContent = "Could not load this metric: " + error.message;
          figure.classList.add("failed");
        }
      })
    );
    document.body.dataset.chartsReady = "true";
    if (select) {
      const redraw = () => {
        for (const [figure, histories] of loaded) draw(figure, figure.dataset.metric, runs, histories, select.value);
      };
      select.addEventListener("change", () => {
        writeView(select.value);
        redraw();
      });
      viewControls(select, redraw);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    charts();
  });
})();
