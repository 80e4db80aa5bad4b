// Types of native-dir.cjs (plain CommonJS so that the Node SEA's loader can require it as it is).
export declare function nativePath(hash: string, bytes: () => Uint8Array): string;
export declare function loadNative(path: string): unknown;
