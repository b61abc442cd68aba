/**
 * The browser side of the reports, as source text inlined into the page. It reads the
 * page's JSON data element, renders every user-provided string with textContent, and
 * draws with uPlot (already loaded as the global `uPlot`). Plain ES2017, no modules.
 */

/** Helpers both report kinds share: shaded windows, marker series, sizing. */
const COMMON = String.raw`
var DATA = JSON.parse(document.getElementById('report-data').textContent);
window.__charts = [];
function chartWidth(el) { return Math.max(480, Math.min(1400, (el.clientWidth || document.body.clientWidth) - 8)); }
function shadeWindows(windows, color) {
  return function (u) {
    var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    ctx.save(); ctx.fillStyle = color;
    for (var i = 0; i < windows.length; i++) {
      var a = u.valToPos(windows[i][0], 'x', true), b = u.valToPos(windows[i][1], 'x', true);
      var left = Math.max(u.bbox.left, Math.min(a, b)), right = Math.min(u.bbox.left + u.bbox.width, Math.max(a, b));
      if (right >= left) ctx.fillRect(left, top, Math.max(2, right - left), height);
    }
    ctx.restore();
  };
}
function markerSeries(label, color, scale) {
  return { label: label, scale: scale, stroke: color, fill: color, width: 0, paths: function () { return null; }, points: { show: true, size: 9, stroke: color, fill: color } };
}
function markers(length, at, ys) {
  var out = new Array(length).fill(null);
  for (var i = 0; i < at.length; i++) out[at[i]] = ys[at[i]];
  return out;
}
`;

/** eval --report: one chart per series (values, windows, detections, grade trace). */
export const EVAL_REPORT_SCRIPT = `${COMMON}
DATA.series.forEach(function (s, i) {
  var el = document.querySelector('[data-series="' + i + '"]');
  var n = s.x.length;
  var threshold = new Array(n).fill(s.threshold);
  var opts = {
    width: chartWidth(el), height: 260,
    scales: { x: { time: true }, g: { range: [0, 1.05] } },
    series: [
      {},
      { label: 'value', scale: 'v', stroke: '#1f77b4', width: 1 },
      { label: 'grade (NAB score)', scale: 'g', stroke: '#ff7f0e', width: 1 },
      { label: 'threshold', scale: 'g', stroke: '#999', width: 1, dash: [4, 4] },
      markerSeries('true positive', '#1a9e1a', 'v'),
      markerSeries('false positive', '#d62728', 'v')
    ],
    axes: [{}, { scale: 'v', size: 70 }, { scale: 'g', side: 1, size: 50, grid: { show: false } }],
    hooks: { drawClear: [shadeWindows(s.windows, 'rgba(255, 200, 0, 0.25)')] }
  };
  var data = [s.x, s.value, s.grade, threshold, markers(n, s.tpAt, s.value), markers(n, s.fpAt, s.value)];
  var u = new uPlot(opts, data, el);
  window.__charts.push(u);
});
document.body.dataset.ready = 'true';
`;

/** detect --plot: one chart, the key chosen in a selector. */
export const DETECT_PLOT_SCRIPT = `${COMMON}
var select = document.getElementById('key');
var current = null;
DATA.keys.forEach(function (k, i) {
  var o = document.createElement('option');
  o.value = String(i);
  o.textContent = k.label;
  select.appendChild(o);
});
function show(i) {
  var k = DATA.keys[i];
  var el = document.getElementById('chart');
  if (current) { current.destroy(); window.__charts = []; }
  document.getElementById('key-summary').textContent = k.summary;
  var n = k.x.length;
  var series = [{ label: 'record' }];
  var data = [k.x];
  DATA.fields.forEach(function (f, d) {
    series.push({ label: f, scale: 'v', stroke: ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b'][d % 4], width: 1 });
    data.push(k.values[d]);
  });
  series.push({ label: 'score', scale: 's', stroke: '#ff7f0e', width: 1 });
  data.push(k.score);
  series.push({ label: 'threshold', scale: 's', stroke: '#999', width: 1, dash: [4, 4] });
  data.push(k.threshold);
  series.push(markerSeries('anomaly', '#d62728', 's'));
  data.push(markers(n, k.anomalyAt, k.score));
  current = new uPlot({
    width: chartWidth(el), height: 320,
    scales: { x: { time: false } },
    series: series,
    axes: [{ label: 'record' }, { scale: 'v', size: 70 }, { scale: 's', side: 1, size: 50, grid: { show: false } }]
  }, data, el);
  window.__charts.push(current);
  document.body.dataset.key = String(i);
}
select.addEventListener('change', function () { show(Number(select.value)); });
if (DATA.keys.length > 0) show(0);
document.body.dataset.ready = 'true';
`;
