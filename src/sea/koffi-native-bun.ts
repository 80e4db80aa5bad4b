// Loads koffi's native module inside the Bun-compiled CNI executable (scripts/build-cni.mjs redirects
// '@koromix/koffi-linux-x64' here). The module is embedded in the executable as a file (Bun's
// `type: "file"` import gives its path in the executable's own file system, readable but not
// dlopen-able); it is unpacked once by content hash into a root-only directory (native-dir.cjs), as
// the Node SEA does, rather than into a new temporary file on every start.
import { readFileSync } from 'node:fs';
// @ts-expect-error the build resolves this to node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node
import embedded from 'strand-koffi-native-file' with { type: 'file' };
import { loadNative, nativePath } from './native-dir.cjs';

declare const STRAND_KOFFI_HASH: string;

export default loadNative(nativePath(STRAND_KOFFI_HASH, () => readFileSync(embedded as string))) as unknown;
