import { describe, expect, it } from 'vitest';
import { createRecordDetector } from '../../src/detect/detector-spec.js';
import { graderFactory } from '../../src/detect/strategy.js';
import { decodeModels, encodeModels, modelFingerprint, ModelSnapshotCorruptError } from '../../src/pipeline/models.js';
import { serviceConfig } from './support.js';

async function saved(): Promise<{ bytes: Uint8Array; detect: Awaited<ReturnType<typeof serviceConfig>>['detect'] }> {
  const { detect } = await serviceConfig(['--input-stream', 'in']);
  const detector = await createRecordDetector({ forest: detect.forest, threshold: detect.threshold, attribution: detect.explain, keyed: false, maxKeys: detect.maxKeys });
  const bytes = encodeModels(detector, modelFingerprint(detect));
  detector.dispose();
  return { bytes, detect };
}

describe('service model snapshots', () => {
  it('round-trips', async () => {
    const { bytes, detect } = await saved();
    const back = await decodeModels(bytes, { detect, grader: await graderFactory(detect.threshold), source: 'file:x' });
    expect(back.size).toBe(1);
    back.dispose();
  });

  it('a damaged settings header is a clear error naming the source and the damage, not a raw SyntaxError', async () => {
    const { bytes, detect } = await saved();
    const broken = Uint8Array.from(bytes);
    broken[6 + 5] = 0x58; // the header's opening '{' becomes 'X'
    const grader = await graderFactory(detect.threshold);
    const err = await decodeModels(broken, { detect, grader, source: 'file:./rcf-stream-in.checkpoint' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelSnapshotCorruptError);
    expect((err as Error).message).toMatch(
      /^file:\.\/rcf-stream-in\.checkpoint: checkpoint models are damaged: the settings header \(\d+ bytes\) is not valid JSON \(Unexpected token/,
    );
  });

  it('names a header that is valid JSON but holds no settings, a cut-off header and foreign bytes', async () => {
    const { detect } = await saved();
    const grader = await graderFactory(detect.threshold);
    const header = Buffer.from('[1]', 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(header.length);
    const noSettings = Buffer.concat([Buffer.from('RCFSVC\x01', 'latin1'), len, header]);
    await expect(decodeModels(noSettings, { detect, grader, source: 's' })).rejects.toThrow(/^s: checkpoint models are damaged: the settings header has no settings object$/);
    len.writeUInt32BE(1000);
    const cut = Buffer.concat([Buffer.from('RCFSVC\x01', 'latin1'), len, header]);
    await expect(decodeModels(cut, { detect, grader, source: 's' })).rejects.toThrow(/^s: checkpoint models are damaged: the settings header says 1000 bytes, but only 3 follow$/);
    await expect(decodeModels(Buffer.from('hello world!'), { detect, grader, source: 's' })).rejects.toThrow(/^s: checkpoint models are not an rcf-stream model snapshot: its 12 bytes start with "hello world!" \(text\); a model snapshot starts with "RCFSVC"$/);
  });
});
