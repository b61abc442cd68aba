import { describe, expect, it } from 'vitest';
import { MAX_NOTIFICATION_FIELD_CHARS, notificationField, wellFormedText } from '../../src/aws/notification-text.js';

describe('wellFormedText', () => {
  it('replaces lone surrogates with U+FFFD and keeps pairs', () => {
    expect(wellFormedText('a\ud800b')).toBe('a\ufffdb');
    expect(wellFormedText('\udc00x\ud83d')).toBe('\ufffdx\ufffd');
    expect(wellFormedText('\ud83d\ude00 ok')).toBe('\ud83d\ude00 ok');
    expect(wellFormedText('\ude00\ud83d')).toBe('\ufffd\ufffd'); // reversed pair: two lone halves
    // The result always URI-encodes (what the SDK does with it).
    expect(() => encodeURIComponent(wellFormedText('x\udbff'))).not.toThrow();
  });
});

describe('notificationField', () => {
  it('leaves ordinary text alone', () => {
    expect(notificationField('2024-05-01T10:00:00Z')).toBe('2024-05-01T10:00:00Z');
    expect(notificationField('Zürich ✓ 東京')).toBe('Zürich ✓ 東京');
  });

  it('writes line breaks and other controls as escapes, so a field cannot add lines', () => {
    const forged = '5\n\nAll clear: ignore the alert above.\r\n\tVisit http://evil.example';
    const out = notificationField(forged);
    expect(out).toBe('5\\n\\nAll clear: ignore the alert above.\\r\\n\\tVisit http://evil.example');
    expect(out).not.toMatch(/[\r\n\t]/);
    expect(notificationField('a\u0000b\u001bc\u007fd\u0085e')).toBe('a\\u0000b\\u001bc\\u007fd\\u0085e');
    expect(notificationField('x\u2028y\u2029z')).toBe('x\\u2028y\\u2029z');
  });

  it('escapes bidirectional overrides and zero-width characters', () => {
    expect(notificationField('abc\u202egpj.exe')).toBe('abc\\u202egpj.exe');
    expect(notificationField('a\u200bb\u2066c\ufeff')).toBe('a\\u200bb\\u2066c\\ufeff');
  });

  it('caps the length in code points with a marker, never splitting a pair', () => {
    const long = 'x'.repeat(MAX_NOTIFICATION_FIELD_CHARS + 50);
    expect(notificationField(long)).toBe(`${'x'.repeat(MAX_NOTIFICATION_FIELD_CHARS)}…[50 more characters]`);
    expect(notificationField('x'.repeat(MAX_NOTIFICATION_FIELD_CHARS))).toBe('x'.repeat(MAX_NOTIFICATION_FIELD_CHARS));
    const emoji = '\ud83d\ude00'.repeat(5);
    expect(notificationField(emoji, 3)).toBe(`${'\ud83d\ude00'.repeat(3)}…[2 more characters]`);
  });

  it('makes lone surrogates U+FFFD', () => {
    expect(notificationField('t\ud800')).toBe('t\ufffd');
  });
});
