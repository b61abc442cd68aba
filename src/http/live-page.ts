/**
 * The live page's static parts: the HTML shell, its stylesheet and its script. Nothing
 * user-provided is ever part of them: key names, field names and values arrive as JSON over
 * Server-Sent Events and are rendered with textContent. The Content-Security-Policy the
 * server sends allows scripts from the server itself only (no inline script).
 */

export const LIVE_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rcf-stream live</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uPlot.min.css">
<link rel="stylesheet" href="/assets/live.css">
</head><body>
<h1>rcf-stream live</h1>
<p class="meta"><span id="status">connecting</span> · <label>view <select id="key"><option value="">(whole stream)</option></select></label>
<span id="key-note" class="note"></span></p>
<div id="chart"></div>
<div class="cols">
<div><h2>Recent anomalies</h2>
<table id="anomalies"><thead><tr><th>time</th><th>key</th><th>record</th><th>values</th><th>score</th><th>attribution</th></tr></thead><tbody></tbody></table></div>
<div><h2>Counters</h2><table id="counters"><tbody></tbody></table>
<p class="meta"><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></p></div>
</div>
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/live.js"></script>
</body></html>
`;

export const LIVE_PAGE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 16px 0 4px; }
select { max-width: 24em; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
.meta { color: #555; } .note { color: #a40; } .cols { display: flex; gap: 32px; flex-wrap: wrap; }
#anomalies td:nth-child(5) { text-align: right; } #counters td:nth-child(2) { text-align: right; font-variant-numeric: tabular-nums; }
`;

export const LIVE_PAGE_SCRIPT = String.raw`(function () {
  'use strict';
  var MAX_POINTS = 5000, MAX_ROWS = 50;
  var select = document.getElementById('key');
  var chartEl = document.getElementById('chart');
  var status = document.getElementById('status');
  var body = document.body;
  var data = [[], [], [], [], []];
  var anomalyRows = [];
  var es = null, u = null, currentKey = '';

  function marker(label, color, scale) {
    return { label: label, scale: scale, stroke: color, fill: color, width: 0, paths: function () { return null; }, points: { show: true, size: 9, stroke: color, fill: color } };
  }
  function build(fieldName) {
    if (u) u.destroy();
    u = new uPlot({
      width: Math.max(480, Math.min(1400, document.body.clientWidth - 8)), height: 320,
      scales: { x: { time: true } },
      series: [
        { label: 'time' },
        { label: fieldName, scale: 'v', stroke: '#1f77b4', width: 1 },
        { label: 'score', scale: 's', stroke: '#ff7f0e', width: 1 },
        { label: 'threshold', scale: 's', stroke: '#999', width: 1, dash: [4, 4] },
        marker('anomaly', '#d62728', 's')
      ],
      axes: [{}, { scale: 'v', size: 70 }, { scale: 's', side: 1, size: 50, grid: { show: false } }]
    }, data, chartEl);
    window.__chart = u;
  }
  function apply(p, reset) {
    if (reset) data = [[], [], [], [], []];
    for (var i = 0; i < p.t.length; i++) {
      data[0].push(p.t[i]); data[1].push(p.value[i]); data[2].push(p.score[i]); data[3].push(p.threshold[i]);
      data[4].push(p.anomaly[i] === 1 ? p.score[i] : null);
    }
    var extra = data[0].length - MAX_POINTS;
    if (extra > 0) for (var d = 0; d < data.length; d++) data[d].splice(0, extra);
    u.setData(data);
    var marks = 0;
    for (var j = 0; j < data[4].length; j++) if (data[4][j] !== null) marks++;
    body.dataset.points = String(data[0].length);
    body.dataset.markers = String(marks);
  }
  function text(tag, value) { var el = document.createElement(tag); el.textContent = value; return el; }
  function fmt(v) { return v === null || v === undefined ? '' : (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : Number(v).toPrecision(4)); }
  function showAnomalies(list, reset) {
    if (reset) anomalyRows = [];
    anomalyRows = list.slice().reverse().concat(anomalyRows).slice(0, MAX_ROWS);
    var tbody = document.querySelector('#anomalies tbody');
    tbody.textContent = '';
    anomalyRows.forEach(function (a) {
      var tr = document.createElement('tr');
      tr.appendChild(text('td', new Date(a.t * 1000).toLocaleTimeString()));
      tr.appendChild(text('td', a.key === undefined || a.key === null ? '' : a.key));
      tr.appendChild(text('td', a.recordId || ''));
      tr.appendChild(text('td', Object.keys(a.values).map(function (k) { return k + '=' + fmt(a.values[k]); }).join(', ')));
      tr.appendChild(text('td', fmt(a.score)));
      var expl = '';
      if (a.explanation) expl = Object.keys(a.explanation).map(function (k) { var e = a.explanation[k]; return k + ' ' + fmt(e.ATTRIBUTION_SCORE) + ' ' + e.DIRECTION; }).join(', ');
      tr.appendChild(text('td', expl || '(run with --explain)'));
      tbody.appendChild(tr);
    });
    body.dataset.anomalyRows = String(anomalyRows.length);
  }
  function showCounters(c) {
    var tbody = document.querySelector('#counters tbody');
    tbody.textContent = '';
    Object.keys(c).forEach(function (k) {
      var tr = document.createElement('tr');
      tr.appendChild(text('td', k)); tr.appendChild(text('td', fmt(c[k])));
      tbody.appendChild(tr);
    });
  }
  function showKeys(keys, dropped) {
    var keep = currentKey;
    while (select.options.length > 1) select.remove(1);
    var seen = false;
    keys.slice().sort().forEach(function (k) {
      var o = document.createElement('option'); o.value = k; o.textContent = k; select.appendChild(o);
      if (k === keep) seen = true;
    });
    if (keep !== '' && !seen) { var o = document.createElement('option'); o.value = keep; o.textContent = keep; select.appendChild(o); }
    select.value = keep;
    document.getElementById('key-note').textContent = dropped > 0 ? dropped + ' keys no longer shown (only the most recent ones are kept)' : '';
    body.dataset.keys = String(keys.length);
  }
  function connect(key) {
    if (es) es.close();
    currentKey = key;
    body.dataset.key = key;
    body.dataset.points = '0';
    es = new EventSource('/api/events?key=' + encodeURIComponent(key));
    es.onopen = function () { status.textContent = 'live'; body.dataset.connected = 'true'; };
    es.onerror = function () { status.textContent = 'reconnecting'; body.dataset.connected = 'false'; };
    es.onmessage = function (e) {
      var m = JSON.parse(e.data);
      var reset = m.type === 'reset';
      if (reset) build(m.field || 'value');
      if (m.keys) showKeys(m.keys, m.keysDropped || 0);
      if (m.points) apply(m.points, reset);
      if (m.anomalies) showAnomalies(m.anomalies, reset);
      if (m.counters) showCounters(m.counters);
      body.dataset.ready = 'true';
    };
  }
  select.addEventListener('change', function () { connect(select.value); });
  connect('');
})();
`;
