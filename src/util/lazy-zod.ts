// zod, loaded on first use. The CNI plugins check the configurations they usually get with plain
// code (src/util/plain.ts, microseconds) and build a zod schema only for input those checks do not
// accept, which zod then accepts after all or refuses with its own message: loading zod is about
// 7 ms of every pod start under Bun (docs/architecture.md). `require` is what the bundlers turn into
// a lazily initialised module (as for koffi in src/kernel/libc.ts); under vitest one is made.
import { createRequire } from 'node:module';

export type Zod = typeof import('zod');

let loaded: Zod | undefined;

export function zod(): Zod {
  loaded ??= (typeof require === 'function' ? require('zod') : createRequire(import.meta.url)('zod')) as Zod;
  return loaded;
}
