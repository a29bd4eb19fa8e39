/* The staff console dashboard: draws the series of #console-series with Chart.js (served
   from this site, see vendor/chartjs). Marks #console-charts[data-ready] when drawn. */
(function () {
  "use strict";
  var el = document.getElementById("console-series");
  if (!el || typeof Chart === "undefined") { return; }
  var s = JSON.parse(el.textContent);
  var blue = "#417690", orange = "#e08e0b", green = "#2e8b57", red = "#ba2121";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  function draw(id, type, labels, datasets, extra) {
    return new Chart(document.getElementById(id), Object.assign({
      type: type, data: { labels: labels, datasets: datasets },
      options: { plugins: { legend: { display: datasets.length > 1 } },
                 scales: { x: { ticks: { maxTicksLimit: 10 } }, y: { beginAtZero: true } } }
    }, extra || {}));
  }
  draw("chart-bids", "line", s.labels_hours,
       [{ label: "bids", data: s.bids_per_hour, borderColor: blue, pointRadius: 0, borderWidth: 1 }]);
  draw("chart-sales", "bar", s.labels_days, [
    { label: "sales", data: s.sales_per_day, backgroundColor: blue, yAxisID: "y" },
    { label: "GMV ($)", data: s.gmv_per_day, type: "line", borderColor: orange, yAxisID: "y1" }
  ], { options: { scales: { y: { beginAtZero: true, position: "left" },
                            y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } },
                            x: { ticks: { maxTicksLimit: 10 } } } } });
  draw("chart-disputes", "bar", s.labels_days, [
    { label: "opened", data: s.disputes_opened, backgroundColor: red },
    { label: "resolved", data: s.disputes_resolved, backgroundColor: green }
  ]);
  draw("chart-payouts", "bar", s.labels_days,
       [{ label: "payout failures", data: s.payout_failures, backgroundColor: red }]);
  draw("chart-handoff", "line", s.labels_days,
       [{ label: "median hours", data: s.median_handoff_hours, borderColor: green, spanGaps: true }]);
  document.getElementById("console-charts").setAttribute("data-ready", "yes");
})();
