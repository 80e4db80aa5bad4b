// The agent socket's contract: the wire format of the pod-start handshake and of the command
// line's queries, which the plugin (src/plugin/agent-client.ts), the agent (src/agent/pod-handshake.ts,
// the server) and the CLI (src/cli/agent-query.ts) all import. zod-free and node:net-free, so the
// plugin loads neither for it on every pod start.
//
// Protocol, version 1. A unix stream socket (mode 0600: root's plugin talks to root's agent). Per
// connection the client writes one request, one JSON object on one line ending in "\n" (at most
// MAX_MESSAGE_BYTES, UTF-8); the server writes one answer the same way and closes the connection.
//   request  {"v":1,"type":"pod-start","notice":{"namespace"?,"name"?,"uid"?,"containerId","ifname",
//             "netns","hostVeth","ips":["10.244.1.7","fd00::7"]}}
//            {"v":1,"type":"status"}
//            {"v":1,"type":"inspect"}
//            {"v":1,"type":"explain","src":"ns/pod"|"10.244.1.7"|"203.0.113.0/24","dst":…,"port"?:80,"protocol"?:"TCP"}
//   answer   pod-start: {"v":1,"ok":true} | {"v":1,"ok":false,"message":"why"}
//            status:    {"v":1,"ok":true,"ready":false,"reasons":["node state not written yet"]}
//            inspect:   {"v":1,"ok":true,"inspect":{…}}   (src/agent/inspect.ts; `strand status`)
//            explain:   {"v":1,"ok":true,"explain":{…}}   (`strand explain`)
//            an agent without that query: {"v":1,"ok":false,"error":"unsupported","message":"…"}
// Answers to inspect and explain can be large (every peer's desired entries): the command line
// reads up to MAX_QUERY_ANSWER_BYTES; the plugin never sends these requests.
//            a request that cannot be read: {"v":1,"ok":false,"error":"bad-request","message":"…"}
// "v" is the protocol version. Readers ignore fields they do not know, so adding an optional field
// keeps v at 1; a change a v1 reader would misread bumps it, and a server answers a version it does
// not speak with a bad-request answer. `ips` are addresses without prefix length.
import { join } from 'node:path';
import { AGENT_SOCKET_FILE } from '../defaults.ts';

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

/** The answer to pod-start and status, as both ends read it (fields they do not know are ignored). */
export interface AgentAnswer {
  ok: boolean;
  message?: string;
  ready?: boolean;
  reasons?: string[];
}

export type PodStartAnswer = { ok: boolean; message?: string };

export type AgentReadiness = { ready: boolean; reasons: string[] };

/** The socket the agent listens on (the plugin's default: `<stateDir>/agent.sock`). */
export function agentSocketPath(stateDir: string): string {
  return join(stateDir, AGENT_SOCKET_FILE);
}
