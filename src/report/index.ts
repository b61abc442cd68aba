/** Self-contained HTML reports: `eval --report` and `detect --plot`. */
export { EvalReportCollector, EVAL_REPORT_POINTS } from './eval-report.js';
export { DetectPlotCollector, type DetectPlotOptions, type PlotBatch, type PlotResults } from './detect-plot.js';
export { BucketSeries, type PlotPoint } from './bucket-series.js';
export { downsampleIndices } from './downsample.js';
export { escapeHtml, scriptJson, uplotAssets, renderPage } from './html.js';
