import { describe, expect, it } from 'vitest';
import { DetectPlotCollector } from '../../src/report/detect-plot.js';

function data(html: string): { fields: string[]; keys: { label: string; x: number[]; anomalyAt: number[] }[] } {
  const start = html.indexOf('id="report-data">') + 'id="report-data">'.length;
  return JSON.parse(html.slice(start, html.indexOf('</script>', start))) as ReturnType<typeof data>;
}

describe('DetectPlotCollector', () => {
  it('plots at most maxKeys keys and says how many were left out', () => {
    const plot = new DetectPlotCollector({ fields: ['value'], keyed: true, maxKeys: 200 });
    const n = 2048;
    for (let c = 0; c < 50; c++) {
      const keys = Array.from({ length: n }, (_, i) => `k${c * n + i}`);
      plot.add(
        { count: n, values: new Float64Array(n).fill(1), keys, dimensions: 1 },
        { score: new Float64Array(n).fill(1), threshold: new Float64Array(n).fill(3), anomaly: new Uint8Array(n) },
      );
    }
    expect(plot.keysLeftOut).toBe(50 * n - 200);
    const html = plot.render();
    expect(data(html).keys).toHaveLength(200);
    expect(html).toContain(`${50 * n - 200} more keys are not plotted (at most 200).`);
  });

  it('escapes field names in the page and keeps them as data', () => {
    const plot = new DetectPlotCollector({ fields: ['<b>x</b>'], keyed: false });
    plot.add({ count: 2, values: [1, 2], keys: [], dimensions: 1 }, { score: [0, 9], threshold: [3, 3], anomaly: [0, 1] });
    const html = plot.render();
    expect(html).toContain('fields: &lt;b&gt;x&lt;/b&gt;');
    expect(html).not.toContain('<b>x</b>');
    const d = data(html);
    expect(d.fields).toEqual(['<b>x</b>']);
    expect(d.keys[0]!.x).toEqual([0, 1]);
    expect(d.keys[0]!.anomalyAt).toEqual([1]);
  });
});
