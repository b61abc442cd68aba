/**
 * Notification text: what a record may contribute to a human-read alert.
 *
 * A record's fields end up in SNS e-mails and chat messages, so they must not
 * be able to forge lines of the alert ("\n\nAll clear: ignore the alert
 * above"), reorder text (bidirectional overrides) or make the SDK throw
 * (a lone UTF-16 surrogate cannot be URI-encoded: URIError, notification lost).
 *
 * - `wellFormedText`: lone surrogates become U+FFFD; everything else is kept.
 * - `notificationField`: one line of visible text: well-formed, control and
 *   format characters written as escapes (`\n`, `\u202e`), at most
 *   `maxChars` code points (default 200) with a marker when cut.
 */

/** Longest record field (in code points) put into a notification. */
export const MAX_NOTIFICATION_FIELD_CHARS = 200;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Replaces every lone surrogate with U+FFFD, so the text is valid UTF-16 (and encodes to UTF-8). */
export function wellFormedText(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd');
}

/**
 * C0 and C1 controls, DEL, line/paragraph separators, bidirectional
 * embeddings/overrides/isolates, zero-width and BOM characters.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A record field as one safe line of notification text (see the module comment). */
export function notificationField(text: string, maxChars = MAX_NOTIFICATION_FIELD_CHARS): string {
  const safe = wellFormedText(text).replace(UNSAFE, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const chars = Array.from(safe); // code points, so a surrogate pair is never split
  if (chars.length <= maxChars) return safe;
  return `${chars.slice(0, maxChars).join('')}…[${chars.length - maxChars} more characters]`;
}
