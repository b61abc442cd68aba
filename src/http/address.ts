/** The `--http HOST:PORT` address of the metrics and live-page server. */

export interface HttpAddress {
  host: string;
  port: number;
}

/** Reads "HOST:PORT", ":PORT" or "PORT" (host 127.0.0.1); "[::1]:PORT" for IPv6. Throws RangeError naming the option as `name`. */
export function parseHttpAddress(text: string, name = '--http'): HttpAddress {
  const t = text.trim();
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(t);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`${name} must be HOST:PORT, :PORT or PORT (0-65535), got ${JSON.stringify(text)}`);
  let host = m[1] ?? '';
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host: host === '' ? '127.0.0.1' : host, port };
}
