// The pod path's log: each event is one JSON line appended to the plugin's log file with one
// writeSync, in the shape pino writes (numeric `level`, ISO `time`, `pid`, the bindings, the event's
// fields, `msg`; an Error under any key as {type, message, stack, code}), so the file reads the same
// as before and as the agent's. A CNI invocation logs a handful of lines and exits: loading pino
// and its streams cost about 8 ms of every pod start here (docs/architecture.md), this costs none.
// The agent keeps pino (src/log.ts). A log file that cannot be opened or written never fails a
// verb: logging then goes nowhere.
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVEL: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

type Fields = Record<string, unknown>;

/** What the plugin's code calls: pino's `log.info(fields, msg)` and `log.info(msg)` forms. */
export interface EventLog {
  trace(fields: Fields | string, msg?: string): void;
  debug(fields: Fields | string, msg?: string): void;
  info(fields: Fields | string, msg?: string): void;
  warn(fields: Fields | string, msg?: string): void;
  error(fields: Fields | string, msg?: string): void;
}

/** pino's standard error serialiser, near enough: what an operator needs to read a failure. */
function errorJson(err: Error): Fields {
  const out: Fields = { type: err.name || err.constructor?.name || 'Error', message: err.message, stack: err.stack };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.cause instanceof Error) out.cause = errorJson(err.cause);
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return errorJson(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** The JSON line of one event (exported for the unit test). */
export function eventLine(
  level: number,
  bindings: Fields,
  fields: Fields | string,
  msg: string | undefined,
  now = new Date(),
): string {
  const event = typeof fields === 'string' ? {} : fields;
  const text = typeof fields === 'string' ? fields : msg;
  const record: Fields = { level, time: now.toISOString(), pid: process.pid, ...bindings, ...event };
  if (text !== undefined) record.msg = text;
  return `${JSON.stringify(record, replacer)}\n`;
}

/** A logger appending to `file` at `level` and above; the file is opened at the first event. */
export function eventLog(file: string, level: LogLevel, bindings: Fields = {}): EventLog {
  const min = LEVEL[level];
  let fd: number | undefined;
  let broken = false;
  const write = (n: number, fields: Fields | string, msg?: string): void => {
    if (n < min || broken) return;
    try {
      if (fd === undefined) {
        try {
          fd = openSync(file, 'a', 0o644);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
          fd = openSync(file, 'a', 0o644);
        }
      }
      // O_APPEND: concurrent plugin processes each append whole lines.
      writeSync(fd, eventLine(n, bindings, fields, msg));
    } catch {
      broken = true;
    }
  };
  return {
    trace: (f, m) => write(LEVEL.trace, f, m),
    debug: (f, m) => write(LEVEL.debug, f, m),
    info: (f, m) => write(LEVEL.info, f, m),
    warn: (f, m) => write(LEVEL.warn, f, m),
    error: (f, m) => write(LEVEL.error, f, m),
  };
}
