// Logging for the agent and the command line (pino, JSON lines). The CNI plugins log through
// src/event-log.ts, which writes the same lines without loading pino.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger };

import type { LogLevel } from './event-log.ts';

export type { LogLevel };

export function fileLogger(file: string, level: LogLevel, bindings: Record<string, unknown> = {}): Logger {
  if (level === 'silent') return pino({ level: 'silent' });
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    // sync: a CNI invocation is short and exits right after printing; nothing may be lost.
    const dest = pino.destination({ dest: file, sync: true, append: true });
    return pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  } catch {
    return pino({ level: 'silent' });
  }
}

/** For long-running commands (the agent): JSON lines on stderr, or to a file when one is given. */
export function processLogger(level: LogLevel, file?: string): Logger {
  if (file) return fileLogger(file, level);
  return pino({ level, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: false }));
}

/** A silent logger for code paths that take one optionally. */
export const silentLogger: Logger = pino({ level: 'silent' });
