// The errors of an nftables transport (after knftables' error.go): what failed, why (the kernel's
// errno mostly, as a reason callers can branch on), and for a transaction the line of the script nft
// complained about and that line's command, so a failure names exactly one operation.
/** Why an nft operation failed, from nft's message (the kernel's errno, mostly). */
export type NftErrorReason =
  | 'not-found' // ENOENT: a table, chain, set, element or rule that is not there
  | 'exists' // EEXIST: create of something existing, a map key with another value
  | 'busy' // EBUSY: delete of a chain or set still in use
  | 'unsupported' // EOPNOTSUPP: e.g. changing a base chain's hook or priority
  | 'invalid' // the kernel or nft refused the object (EINVAL, overlapping intervals, …)
  | 'syntax' // nft could not parse the script
  | 'timeout' // nft did not finish in time and was killed
  | 'unavailable' // nft (or ip) could not be started
  | 'failed'; // anything else

export interface NftErrorInit {
  reason: NftErrorReason;
  /** What was being done, e.g. "apply nftables transaction (3 commands) to table inet strand". */
  operation: string;
  /** nft's message without its location lines, e.g. "Could not process rule: No such file or directory". */
  detail: string;
  netns?: string | undefined;
  stderr?: string;
  script?: string;
  /** 1-based line of the script nft complained about first, and its text. */
  line?: number;
  failingCommand?: string;
  cause?: unknown;
}

export class NftError extends Error {
  readonly reason: NftErrorReason;
  readonly operation: string;
  readonly detail: string;
  readonly netns: string | undefined;
  readonly stderr: string;
  readonly script: string | undefined;
  readonly line: number | undefined;
  readonly failingCommand: string | undefined;

  constructor(init: NftErrorInit) {
    const where = init.netns ? ` in netns ${init.netns}` : '';
    const at = init.line !== undefined ? ` at line ${init.line} \`${init.failingCommand ?? ''}\`` : '';
    super(
      `failed to ${init.operation}${where}${at}: ${init.detail}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.name = 'NftError';
    this.reason = init.reason;
    this.operation = init.operation;
    this.detail = init.detail;
    this.netns = init.netns;
    this.stderr = init.stderr ?? '';
    this.script = init.script;
    this.line = init.line;
    this.failingCommand = init.failingCommand;
  }
}

export function isNftError(err: unknown, reason?: NftErrorReason): err is NftError {
  return err instanceof NftError && (reason === undefined || err.reason === reason);
}
