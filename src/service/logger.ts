/**
 * The service's stderr logger: one line per event, text or JSON lines
 * (--stats-json), filtered by level. Fields are caller-chosen and never hold
 * credentials (see describeAwsConfig).
 */
import type { Writable } from 'node:stream';
import type { Logger } from '../aws/retry.js';
import type { LogLevel } from './settings.js';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface ServiceLogger extends Required<Logger> {
  /** A JSON object or a preformatted text line, written as is (stats). */
  line(text: string): void;
}

function fieldText(fields: Record<string, unknown> | undefined): string {
  if (fields === undefined) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    parts.push(`${k}=${typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  }
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

export function createLogger(stream: Writable, level: LogLevel, json: boolean): ServiceLogger {
  const min = LEVELS[level];
  const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[lvl] < min) return;
    if (json) stream.write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields })}\n`);
    else stream.write(`rcf-stream run: ${lvl === 'info' ? '' : `${lvl}: `}${msg}${fieldText(fields)}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    line: (text) => stream.write(`${text}\n`),
  };
}
