// Importing the kernel module must not load koffi: the CLI, VERSION and the CNI skeleton import it
// without making a kernel call, and loading koffi costs milliseconds at every start (DESIGN.md).
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const kernel = resolve(import.meta.dirname, '../../src/kernel/index.ts');

describe('src/kernel loading', () => {
  it('loads koffi on the first kernel call, not at import', () => {
    const script = `
      import { createRequire } from 'node:module';
      const cache = createRequire(import.meta.url).cache;
      const loaded = () => Object.keys(cache).some((k) => k.includes('/koffi/'));
      const k = await import(${JSON.stringify(kernel)});
      const afterImport = loaded();
      k.errnoName(2);
      const afterPureCall = loaded();
      k.NetlinkSocket.open().close();
      console.log(JSON.stringify({ afterImport, afterPureCall, afterOpen: loaded() }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ afterImport: false, afterPureCall: false, afterOpen: true });
  });
});
