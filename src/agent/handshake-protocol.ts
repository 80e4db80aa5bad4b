// The pod-start handshake's wire format (protocol described in pod-handshake.ts): the constants and
// types both sides share. Kept apart from the server so the plugin loads neither zod nor node:net
// for them on every pod start.

export const HANDSHAKE_VERSION = 1;
/** A notice is a few hundred bytes; anything near this bound is not from the plugin. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export type PodStartNotice = {
  namespace?: string;
  name?: string;
  uid?: string;
  containerId: string;
  ifname: string;
  netns: string;
  hostVeth: string;
  ips: string[];
};

export interface ExplainQuery {
  src: string;
  dst: string;
  port?: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

/** The most the command line reads of an inspect or explain answer. */
export const MAX_QUERY_ANSWER_BYTES = 64 * 1024 * 1024;

export type HandshakeRequest =
  | { v: number; type: 'pod-start'; notice: PodStartNotice }
  | { v: number; type: 'status' }
  | { v: number; type: 'inspect' }
  | ({ v: number; type: 'explain' } & ExplainQuery);

/** One line of the wire format: the JSON and its "\n". */
export function encodeMessage(msg: unknown): string {
  return `${JSON.stringify(msg)}\n`;
}
