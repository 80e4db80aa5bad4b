// Build-time constants (esbuild defines them); the fallbacks apply when running from source.
declare const STRAND_VERSION: string | undefined;
declare const STRAND_NODE_VERSION: string | undefined;

export const strandVersion: string = typeof STRAND_VERSION === 'string' ? STRAND_VERSION : '0.0.0-dev';
export const embeddedNodeVersion: string =
  typeof STRAND_NODE_VERSION === 'string' ? STRAND_NODE_VERSION : process.versions.node;

/**
 * Every Strand executable carries this string (the CNI one through bin/strand-cni.ts, the command
 * line through src/install): uninstall removes a `strand` in the CNI bin dir only if it contains it,
 * so a foreign file of that name stays.
 */
export const EXECUTABLE_MARKER = 'strand.dev/executable: a Strand CNI plugin build';
