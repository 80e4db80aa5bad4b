// The CNI executable's libc binding (src/kernel/libc-bun.ts, Bun's FFI) on the real kernel, under the
// pinned Bun the executable is compiled with: the same calls and errno as the koffi binding gives Node.
// The plugin tests cover it through dist/cni/strand; this checks the binding's edges directly.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const BUN = resolve(ROOT, 'node_modules/@oven/bun-linux-x64/bin/bun');
const BINDING = resolve(ROOT, 'src/kernel/libc-bun.ts');

function underBun(body: string): Record<string, unknown> {
  const script = `const { bindLibc } = require(${JSON.stringify(BINDING)}); const { libc, errno } = bindLibc(); const out = {};\n${body}\nprocess.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(BUN, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  if (r.status !== 0) throw new Error(`bun exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('libc through bun:ffi (the CNI executable)', () => {
  it('reports errno and its text for a failed call, and leaves it for one that succeeds', () => {
    const out = underBun(`
      out.closed = libc.close(-1); out.errno = errno(); out.text = libc.strerror(errno());
      const fd = libc.socket(16, 3 | 0x80000, 0); out.fd = fd >= 0; out.closeOk = libc.close(fd); out.after = errno();
      out.setns = libc.setns(0, 0x40000000); out.setnsErrno = errno();
    `);
    expect(out).toEqual({
      closed: -1,
      errno: 9,
      text: 'Bad file descriptor',
      fd: true,
      closeOk: 0,
      after: 9,
      setns: -1,
      setnsErrno: 22,
    });
  });

  it('passes typed-array views (with a byte offset) as pointers: a netlink dump round trip', () => {
    const out = underBun(`
      const fd = libc.socket(16, 3 | 0x80000, 0);
      const sa = Buffer.alloc(12); sa.writeUInt16LE(16, 0);
      out.bind = libc.bind(fd, sa, 12);
      const backing = Buffer.alloc(64 + 12); const view = backing.subarray(64); const len = Uint32Array.of(12);
      out.getsockname = libc.getsockname(fd, view, len);
      out.portIsPid = view.readUInt32LE(4) === process.pid; out.len = len[0];
      out.before = backing.subarray(0, 64).every((b) => b === 0);
      const req = Buffer.alloc(8 + 32).subarray(8); // nlmsghdr + ifinfomsg: RTM_GETLINK, NLM_F_REQUEST|NLM_F_DUMP
      req.writeUInt32LE(32, 0); req.writeUInt16LE(18, 4); req.writeUInt16LE(0x301, 6); req.writeUInt32LE(7, 8);
      out.sent = libc.send(fd, req, req.length, 0);
      const rx = Buffer.alloc(65536); const n = libc.recv(fd, rx, rx.length, 0x20);
      out.received = typeof n === 'number' && n > 16; out.type = rx.readUInt16LE(4); out.seq = rx.readUInt32LE(8);
      const nsfd = require('node:fs').openSync('/proc/self/ns/net', 'r');
      out.nstype = libc.ioctl(nsfd, 0xb703); // NS_GET_NSTYPE
      libc.close(nsfd); libc.close(fd);
    `);
    expect(out).toEqual({
      bind: 0,
      getsockname: 0,
      portIsPid: true,
      len: 12,
      before: true,
      sent: 32,
      received: true,
      type: 16, // RTM_NEWLINK
      seq: 7,
      nstype: 0x40000000, // CLONE_NEWNET
    });
  });
});
