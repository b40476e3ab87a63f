// artifact-gateway UI: metric charts (uPlot) and MLflow-style #/ links. No inline scripts: data comes from
// <script type="application/json" id="chart-data"> and from the tracking API.
(function () {
  "use strict";

  // The mlflow client prints links like http://host/#/experiments/1/runs/<id>; open the same page here.
  if (location.pathname === "/" && /^#\/experiments\//.test(location.hash)) {
    location.replace(location.hash.slice(1));
    return;
  }

  const HISTORY = "/ajax-api/2.0/mlflow/metrics/get-history";
  const COLORS = ["#0b61a4", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];
  window.gatewayCharts = {};

  async function history(runId, key) {
    const points = [];
    let token = "";
    do {
      const url = new URL(HISTORY, location.origin);
      url.searchParams.set("run_id", runId);
      url.searchParams.set("metric_key", key);
      url.searchParams.set("max_results", "25000");
      if (token) url.searchParams.set("page_token", token);
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.message || response.statusText);
      points.push(...(body.metrics || []));
      token = body.next_page_token || "";
    } while (token);
    return points;
  }

  function value(v) {
    const number = Number(v);
    return Number.isFinite(number) ? number : null; // NaN and infinities are gaps
  }

  // One [xs, ys] table per run for the chosen x axis, sorted by x as uPlot needs.
  function table(points, axis) {
    const start = points.length ? Math.min(...points.map((p) => p.timestamp)) : 0;
    const x = (p) => (axis === "step" ? p.step : axis === "time" ? p.timestamp / 1000 : (p.timestamp - start) / 1000);
    const sorted = points.slice().sort((a, b) => x(a) - x(b) || a.timestamp - b.timestamp);
    return [sorted.map(x), sorted.map((p) => value(p.value))];
  }

  function draw(figure, key, runs, histories, axis) {
    const holder = figure.querySelector(".plot");
    holder.textContent = "";
    const tables = histories.map((points) => table(points, axis));
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const options = {
      width: Math.max(320, holder.clientWidth || 420),
      height: 220,
      scales: { x: { time: axis === "time" } },
      series: [{ label: axis }].concat(
        runs.map((run, i) => ({ label: run.name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: tables[i][0].length < 60 } }))
      ),
      legend: { show: runs.length > 1 },
    };
    const plot = new uPlot(options, data, holder);
    const count = histories.reduce((n, points) => n + points.length, 0);
    figure.querySelector(".chart-note").textContent = count + " point" + (count === 1 ? "" : "s");
    window.gatewayCharts[key] = { axis: axis, runs: runs.map((r) => r.id), tables: tables, points: histories, plot: plot };
  }

  async function charts() {
    const block = document.getElementById("chart-data");
    if (!block) return;
    const runs = JSON.parse(block.textContent).runs;
    const select = document.getElementById("x-axis");
    const figures = Array.from(document.querySelectorAll("figure.chart"));
    const loaded = new Map();
    await Promise.all(
      figures.map(async (figure) => {
        const key = figure.dataset.metric;
        try {
          const histories = await Promise.all(runs.map((run) => history(run.id, key)));
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
      select.addEventListener("change", () => {
        for (const [figure, histories] of loaded) draw(figure, figure.dataset.metric, runs, histories, select.value);
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    charts();
  });
})();
