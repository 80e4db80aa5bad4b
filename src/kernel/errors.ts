// Every kernel failure (netlink, setns, sysctl files) becomes a KernelError that says what was being
// done to which object, in which namespace, and what the kernel answered, in the form the reference
// plugins use: `failed to add address 10.244.1.5/24 to eth0 in /run/netns/x: File exists`.
import { constants } from 'node:os';
import { libc } from './libc.ts';

let errnoNames: Map<number, string> | undefined;

/** The symbolic name of an errno value, e.g. 17 → "EEXIST". */
export function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    // Where Linux has two names for one number, the first here wins: the kernel's own spelling.
    for (const preferred of ['EAGAIN', 'EDEADLK', 'EOPNOTSUPP']) {
      const n = (constants.errno as Record<string, number>)[preferred];
      if (n !== undefined) errnoNames.set(n, preferred);
    }
    for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);
  }
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** libc's strerror(3) text, e.g. 17 → "File exists". */
export function strerror(errno: number): string {
  return libc().strerror(errno);
}

export interface KernelErrorInit {
  /** Positive errno value. */
  errno: number;
  /** What was being done, e.g. "add address 10.244.1.5/24 to eth0". */
  operation: string;
  /** The namespace the operation ran in, when it was not the caller's own. */
  netns?: string | undefined;
  /** The kernel's extended acknowledgement message (NLMSGERR_ATTR_MSG), if it sent one. */
  kernelMessage?: string | undefined;
  cause?: unknown;
}

export class KernelError extends Error {
  /** Positive errno value, e.g. 17. */
  readonly errno: number;
  /** Its symbolic name, e.g. "EEXIST". */
  readonly code: string;
  readonly operation: string;
  readonly netns: string | undefined;
  readonly kernelMessage: string | undefined;

  constructor(init: KernelErrorInit) {
    const where = init.netns ? ` in ${init.netns}` : '';
    const extra = init.kernelMessage ? ` (${init.kernelMessage})` : '';
    super(
      `failed to ${init.operation}${where}: ${strerror(init.errno)}${extra}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.name = 'KernelError';
    this.errno = init.errno;
    this.code = errnoName(init.errno);
    this.operation = init.operation;
    this.netns = init.netns;
    this.kernelMessage = init.kernelMessage;
  }
}

/** True when err is a KernelError, and (if given) has one of the errno names. */
export function isKernelError(err: unknown, ...codes: string[]): err is KernelError {
  return err instanceof KernelError && (codes.length === 0 || codes.includes(err.code));
}

/** A KernelError from a failed Node fs call (sysctl files, namespace files). */
export function fromSystemError(err: unknown, operation: string, netns?: string): KernelError | unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno !== 'number') return err;
  return new KernelError({ errno: Math.abs(e.errno), operation, netns, cause: err });
}
