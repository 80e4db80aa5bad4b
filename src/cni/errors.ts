// CNI error codes and the one error type every failure becomes (CNI spec §5 "Error").
// A CniError is printed as the spec's error JSON on stdout with a non-zero exit.

export const ErrorCode = {
  /** The config's cniVersion is not supported, or the verb is not allowed at that version. */
  IncompatibleVersion: 1,
  /** A field of the network config is not supported; the message names the key and value. */
  UnsupportedField: 2,
  /** The container is unknown: the runtime need not clean up. */
  UnknownContainer: 3,
  /** Missing or invalid CNI_* environment variables; the message names them. */
  InvalidEnvironment: 4,
  /** I/O failure, such as reading stdin. */
  IoFailure: 5,
  /** Content could not be decoded: malformed JSON, a bad version string. */
  DecodingFailure: 6,
  /** The network configuration is invalid. */
  InvalidNetworkConfig: 7,
  /** A transient condition: the runtime should try again later. */
  TryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD. */
  PluginNotAvailable: 50,
  /** STATUS: the plugin cannot serve ADD and existing containers may have limited connectivity. */
  PluginNotAvailableLimitedConnectivity: 51,
  // Plugin-specific codes start at 100 (spec: 0-99 are reserved for well-known errors).
  /** No address left in a range set. */
  AddressesExhausted: 100,
  /** A kernel (netlink, sysctl, namespace) operation failed. */
  KernelFailure: 101,
  /** A delegated plugin (IPAM) failed or could not be run. */
  DelegateFailure: 102,
  /** A CHECK found the attachment different from what ADD made. */
  CheckFailed: 103,
  /** The verb is not implemented by this plugin yet. */
  NotImplemented: 104,
  /** Anything else. */
  Internal: 999,
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

/** Turns anything thrown into a CniError; plain errors become code 999 as the reference skel does. */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error) return new CniError(ErrorCode.Internal, err.message, undefined, { cause: err });
  return new CniError(ErrorCode.Internal, String(err));
}

/** Wraps an error from a step with what was being done, keeping its code. */
export function withContext(err: unknown, what: string): CniError {
  const e = asCniError(err);
  return new CniError(e.code, `${what}: ${e.message}`, e.details, { cause: err });
}
