// The plugins' log (src/event-log.ts): pino's line shape, one line per event, level filtering, and a
// log file that cannot be written never throws.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventLine, eventLog } from '../../src/event-log.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'stt-log-'));
  dirs.push(d);
  return d;
};

describe('event log', () => {
  it('writes pino-shaped JSON lines with the bindings, the fields and msg', () => {
    const line = eventLine(
      40,
      { plugin: 'strand', verb: 'ADD' },
      { hostVeth: 'veth0' },
      'went on',
      new Date('2026-01-02T03:04:05.678Z'),
    );
    expect(line.endsWith('\n')).toBe(true);
    expect(JSON.parse(line)).toEqual({
      level: 40,
      time: '2026-01-02T03:04:05.678Z',
      pid: process.pid,
      plugin: 'strand',
      verb: 'ADD',
      hostVeth: 'veth0',
      msg: 'went on',
    });
    expect(JSON.parse(eventLine(30, {}, 'DEL done', undefined))).toMatchObject({ level: 30, msg: 'DEL done' });
  });

  it('serialises errors as pino does (type, message, stack, code)', () => {
    const err = Object.assign(new TypeError('boom'), { code: 'EBOOM' });
    const rec = JSON.parse(eventLine(50, {}, { err }, 'failed'));
    expect(rec.err).toMatchObject({ type: 'TypeError', message: 'boom', code: 'EBOOM' });
    expect(rec.err.stack).toContain('boom');
  });

  it('appends to a file made on the first event, at the level and above', () => {
    const file = join(tempDir(), 'sub', 'cni.log');
    const log = eventLog(file, 'info', { plugin: 'strand' });
    log.debug({ x: 1 }, 'not written');
    log.info({ x: 2 }, 'written');
    log.error('also written');
    const lines = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [30, 'written'],
      [50, 'also written'],
    ]);
  });

  it('silent writes nothing, and an unwritable file is no error', () => {
    const dir = tempDir();
    eventLog(join(dir, 'silent.log'), 'silent').error('x');
    expect(() => readFileSync(join(dir, 'silent.log'))).toThrow();
    // A regular file where the log's directory should be: ENOTDIR.
    writeFileSync(join(dir, 'file'), '');
    expect(() => eventLog(join(dir, 'file', 'sub', 'cni.log'), 'info').error('x')).not.toThrow();
  });
});
