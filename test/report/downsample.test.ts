import { describe, expect, it } from 'vitest';
import { downsampleIndices } from '../../src/report/downsample.js';
import { BucketSeries } from '../../src/report/bucket-series.js';
import { escapeHtml, renderPage, scriptJson } from '../../src/report/html.js';

describe('downsampleIndices', () => {
  it('keeps every row of a short series', () => {
    expect(downsampleIndices(5, [[1, 2, 3, 4, 5]], 10)).toEqual([0, 1, 2, 3, 4]);
  });

  it('bounds a long series, keeps its extremes and every marked row', () => {
    const n = 100_000;
    const ys = Float64Array.from({ length: n }, (_, i) => Math.sin(i / 50));
    ys[12_345] = 50;
    ys[77_777] = -50;
    const marked = [3, 40_001, 99_998];
    const rows = downsampleIndices(n, [ys], 1000, marked);
    expect(rows.length).toBeLessThanOrEqual(1000 + marked.length + 2);
    expect(rows.length).toBeGreaterThan(500);
    for (const r of [0, 12_345, 77_777, n - 1, ...marked]) expect(rows).toContain(r);
    expect([...rows].sort((a, b) => a - b)).toEqual(rows);
    expect(new Set(rows).size).toBe(rows.length);
  });

  it('rejects a budget below 2', () => {
    expect(() => downsampleIndices(10, [], 1)).toThrow(RangeError);
  });
});

describe('BucketSeries', () => {
  it('is exact while short', () => {
    const s = new BucketSeries(100);
    for (let i = 0; i < 50; i++) s.add([i, -i], 0, 2, i / 10, 3, false);
    const p = s.points();
    expect(p.map((x) => x.x)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(p[7]).toEqual({ x: 7, values: [7, -7], score: 0.7, threshold: 3, anomaly: false });
  });

  it('stays bounded over a million records and keeps every anomaly and the extremes', () => {
    const s = new BucketSeries(200);
    const anomalies: number[] = [];
    const v = new Float64Array(1);
    for (let i = 0; i < 1_000_000; i++) {
      const anomaly = i % 99_991 === 5;
      if (anomaly) anomalies.push(i);
      v[0] = i === 654_321 ? 1e6 : i === 123_456 ? -1e6 : Math.sin(i);
      s.add(v, 0, 1, anomaly ? 9 : 1, 3, anomaly);
    }
    const p = s.points();
    expect(s.count).toBe(1_000_000);
    expect(p.length).toBeLessThanOrEqual(3 * 200 + anomalies.length);
    expect(p.filter((x) => x.anomaly).map((x) => x.x)).toEqual(anomalies);
    expect(s.anomalyCount).toBe(anomalies.length);
    const xs = p.map((x) => x.x);
    expect(xs).toContain(654_321);
    expect(xs).toContain(123_456);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
  });
});

describe('html', () => {
  it('escapes text and attributes', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('writes JSON that cannot close its script element and parses back to the same value', () => {
    const value = { key: '</script><script>alert(1)</script><!--', line: '\u2028\u2029', amp: 'a&b' };
    const json = scriptJson(value);
    expect(json).not.toMatch(/[<>]/);
    expect(json).not.toContain('\u2028');
    expect(JSON.parse(json)).toEqual(value);
  });

  it('inlines uPlot: the page needs nothing from the network', () => {
    const page = renderPage({ title: '<t>', body: '<p>x</p>', data: { a: '</script>' }, script: 'void 0;' });
    expect(page).toContain('<title>&lt;t&gt;</title>');
    expect(page).not.toMatch(/<script[^>]+src=/);
    expect(page).not.toMatch(/<link[^>]+href=/);
    expect(page).toContain('uPlot');
    // The data element closes exactly where it should.
    const start = page.indexOf('id="report-data">') + 'id="report-data">'.length;
    expect(JSON.parse(page.slice(start, page.indexOf('</script>', start)))).toEqual({ a: '</script>' });
  });
});
