import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteTextBuilder, OutputSink, formatJavaFixed, formatNotification } from '../../src/io/output.js';
import { ProgressBar, formatBytes, formatProgress } from '../../src/cli/progress.js';

describe('formatJavaFixed (Java String.format("%f"))', () => {
  it.each([
    [44.12, '44.120000'],
    [0, '0.000000'],
    [-0, '-0.000000'],
    [2.5, '2.500000'],
    [-1.5, '-1.500000'],
    [0.125, '0.125000'],
    // Java rounds the shortest decimal form half-up; toFixed would round the binary value down here.
    [1.0000005, '1.000001'],
    [5e-7, '0.000001'],
    [4.9e-7, '0.000000'],
    [9.9999995, '10.000000'],
    [123456789.987654321, '123456789.987654'],
    [1.23e-10, '0.000000'],
    [1e21, '1000000000000000000000.000000'],
    [Number.NaN, 'NaN'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
  ])('%s -> %s', (x, expected) => {
    expect(formatJavaFixed(x)).toBe(expected);
  });

  it('honours other precisions', () => {
    expect(formatJavaFixed(3.14159, 2)).toBe('3.14');
    expect(formatJavaFixed(2.5, 0)).toBe('3');
  });
});

describe('formatNotification', () => {
  it('prints the reference sample’s line', () => {
    expect(formatNotification(1234, [44.12], 0, 1, 3.5)).toBe('Anomaly detected: Time=1234, Value=44.120000, Score=3.500000');
    expect(formatNotification('2024-05-01T10:00:00Z', [1, 30, 2], 1, 1, 2)).toBe(
      'Anomaly detected: Time=2024-05-01T10:00:00Z, Value=30.000000, Score=2.000000',
    );
  });

  it('lists several values', () => {
    expect(formatNotification(7, [1, 2.5], 0, 2, 1)).toBe('Anomaly detected: Time=7, Value=[1.000000, 2.500000], Score=1.000000');
  });

  it('keeps a record’s time from forging lines of the alert (escaped, one line, capped)', () => {
    const forged = '5\n\nAll clear: ignore the alert above. Visit http://evil.example';
    const text = formatNotification(forged, [1], 0, 1, 0);
    expect(text).toBe('Anomaly detected: Time=5\\n\\nAll clear: ignore the alert above. Visit http://evil.example, Value=1.000000, Score=0.000000');
    expect(text.split('\n')).toHaveLength(1);
    const huge = formatNotification('9'.repeat(100_000), [1], 0, 1, 0);
    expect(huge.length).toBeLessThan(300);
    expect(huge).toMatch(/^Anomaly detected: Time=9{200}…\[99800 more characters\], Value=1\.000000, Score=0\.000000$/);
    expect(formatNotification('t\ud800', [1], 0, 1, 0)).toBe('Anomaly detected: Time=t\ufffd, Value=1.000000, Score=0.000000');
  });
});

describe('progress display', () => {
  it('shows a bar and percentage when the total is known', () => {
    const line = formatProgress({ bytes: 512 * 1024, totalBytes: 1024 * 1024, records: 20_000, anomalies: 12, seconds: 0.5 });
    expect(line).toBe('[##########..........] 50%  512.0 KiB/1.0 MiB  40,000 records/s  12 anomalies');
  });

  it('shows bytes only on a stream of unknown length', () => {
    expect(formatProgress({ bytes: 100, totalBytes: undefined, records: 0, anomalies: 0, seconds: 0 })).toBe('100 B  0 records/s  0 anomalies');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.00 GiB');
  });

  it('draws on one line, clears it, and draws nothing when disabled', () => {
    const tty = new PassThrough();
    let written = '';
    tty.on('data', (d: Buffer) => (written += d.toString()));
    const bar = new ProgressBar(tty, true);
    bar.update({ bytes: 1, totalBytes: 2, records: 1, anomalies: 0, seconds: 1 }, true);
    bar.clear();
    expect(written).toBe('\r\x1b[K[##########..........] 50%  1 B/2 B  1 records/s  0 anomalies\r\x1b[K');

    const quiet = new PassThrough();
    let nothing = '';
    quiet.on('data', (d: Buffer) => (nothing += d.toString()));
    const off = new ProgressBar(quiet, false);
    off.update({ bytes: 1, totalBytes: 2, records: 1, anomalies: 0, seconds: 1 }, true);
    off.clear();
    expect(nothing).toBe('');
  });
});

describe('OutputSink', () => {
  it('stops quietly once the reader is gone', async () => {
    const stream = new PassThrough();
    const sink = new OutputSink(stream, false);
    sink.write('a\n');
    stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(sink.closed).toBe(true);
    expect(sink.error).toBeUndefined();
    sink.write('b\n');
    await sink.finish();
    expect(stream.read()?.toString()).toBe('a\n');
  });

  it('keeps a real write error for the end', () => {
    const stream = new PassThrough();
    const sink = new OutputSink(stream, false);
    stream.emit('error', Object.assign(new Error('no space left'), { code: 'ENOSPC' }));
    expect(sink.error?.message).toBe('no space left');
    expect(sink.stopped).toBe(true);
  });
});

describe('ByteTextBuilder', () => {
  const pieces = [
    '{"time":1,"value":30.5}',
    ',"score":',
    String(0.1 + 0.2),
    'é€😀 and more',
    '\uFEFF',
    'lone \uD800 surrogate \uDC00',
    'x'.repeat(47) + 'é',
    'y'.repeat(5000),
    'z'.repeat(300) + '€',
    '',
    '\n',
  ];

  it('gives the bytes Buffer.from gives for the concatenated text', () => {
    const builder = new ByteTextBuilder(16);
    for (const piece of pieces) builder.append(piece);
    expect(builder.length).toBe(Buffer.byteLength(pieces.join('')));
    expect(builder.take()).toEqual(Buffer.from(pieces.join('')));
  });

  it('drops the tail from a position with appendUntil', () => {
    const builder = new ByteTextBuilder(16);
    builder.appendUntil('{"a":1}', 6);
    builder.appendUntil('{"a":"é"} \t', 8);
    builder.appendUntil('{"é":1}', 6);
    builder.append('\n');
    expect(builder.take().toString()).toBe('{"a":1{"a":"é"{"é":1\n');
  });

  it('starts over after take, leaving the taken bytes alone', () => {
    const builder = new ByteTextBuilder(16);
    builder.append('first batch');
    const first = builder.take();
    builder.append('second');
    expect(builder.length).toBe(6);
    expect(first.toString()).toBe('first batch');
    expect(builder.take().toString()).toBe('second');
    expect(builder.take()).toHaveLength(0);
  });

  it('writes bytes to an OutputSink', async () => {
    const stream = new PassThrough();
    const sink = new OutputSink(stream, false);
    const builder = new ByteTextBuilder();
    builder.append('é\n');
    sink.write(builder.take());
    sink.write('text\n');
    sink.write(builder.take());
    await sink.finish();
    expect(stream.read()?.toString()).toBe('é\ntext\n');
  });
});
