/**
 * Building blocks of the self-contained HTML pages (reports and the live page):
 * escaping for text and attributes, JSON that is safe inside a <script> element,
 * and uPlot's script and stylesheet read from the installed package (never a CDN).
 *
 * Safety rule for every page: user-provided strings (key names, field names, file
 * names) reach the page only as escaped text or as JSON data that the page's own
 * script renders with textContent; never as markup.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text or attribute value for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON for a `<script type="application/json">` element: `<` is written as \u003c so that no
 * `</script>` or `<!--` can end or change the element; U+2028/U+2029 likewise escaped.
 * Non-finite numbers become null (JSON has no NaN).
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export interface UplotAssets {
  script: string;
  css: string;
}

let assets: UplotAssets | undefined;

/** uPlot's minified IIFE build and stylesheet, from node_modules (read once). */
export function uplotAssets(): UplotAssets {
  if (assets === undefined) {
    const require = createRequire(import.meta.url);
    const script = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
    const css = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
    // Inlined inside <script>/<style>: a closing tag in the library would break the page.
    if (/<\/script/i.test(script) || /<\/style/i.test(css)) throw new Error('uPlot assets contain a closing tag; cannot inline them');
    assets = { script, css };
  }
  return assets;
}

/** Shared look of the pages. */
export const PAGE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 20px 0 4px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.meta { color: #555; } .chart { margin: 4px 0 16px; } .note { color: #a40; }
.tp { color: #080; } .fp { color: #c00; }
`;

/** One whole page: inlined uPlot, the data as JSON, and the page's own script. */
export function renderPage(options: { title: string; body: string; data: unknown; script: string; extraCss?: string }): string {
  const { script, css } = uplotAssets();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)}</title>
<style>${css}</style>
<style>${PAGE_CSS}${options.extraCss ?? ''}</style>
</head><body>
${options.body}
<script type="application/json" id="report-data">${scriptJson(options.data)}</script>
<script>${script}</script>
<script>${options.script}</script>
</body></html>
`;
}
