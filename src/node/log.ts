/**
 * Structured logs (DESIGN.md, Node and operations): pino, one JSON object per
 * line on stdout by default, or a plain text line per record for a terminal.
 * Records carry peer-ids, reason codes and durations as fields; key material
 * and the API token are never passed to the logger (the `redact` paths are a
 * second line of defence for fields with those names).
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** `2026-11-20T10:00:00.000Z INFO peer active peerId=pq1... rttMs=0.4` from one pino JSON line. */
export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof rec['time'] === 'number' ? new Date(rec['time']).toISOString() : '';
  const level = LEVEL_NAMES[rec['level'] as number] ?? String(rec['level']);
  const fields = Object.entries(rec)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [time, level.padEnd(5), String(rec['msg'] ?? ''), ...fields].filter((s) => s !== '').join(' ');
}

/** A stream that turns pino's JSON lines into text lines on `out`. */
function textStream(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8');
      let nl: number;
      let text = '';
      while ((nl = pending.indexOf('\n')) >= 0) {
        text += `${formatTextLine(pending.slice(0, nl))}\n`;
        pending = pending.slice(nl + 1);
      }
      if (text === '') done();
      else out.write(text, () => done());
    },
  });
}

export function createLogger(options: { level: LogLevel; format: 'json' | 'text'; destination?: NodeJS.WritableStream; name?: string }): Logger {
  const dest = options.destination ?? process.stdout;
  return pino(
    {
      level: options.level,
      base: options.name === undefined ? null : { name: options.name },
      redact: { paths: ['token', '*.token', 'privateKey', '*.privateKey', 'authorization', '*.authorization'], censor: '[redacted]' },
    },
    options.format === 'text' ? textStream(dest) : dest,
  );
}
