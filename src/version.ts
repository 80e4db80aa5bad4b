// Build-time constants (esbuild defines them); the fallbacks apply when running from source.
declare const STRAND_VERSION: string | undefined;
declare const STRAND_NODE_VERSION: string | undefined;

export const strandVersion: string = typeof STRAND_VERSION === 'string' ? STRAND_VERSION : '0.0.0-dev';
export const embeddedNodeVersion: string = typeof STRAND_NODE_VERSION === 'string' ? STRAND_NODE_VERSION : process.versions.node;
