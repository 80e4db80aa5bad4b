// A TCP server inside a test namespace that records each peer's address: how tests see with which
// source address a connection arrived (masquerade, pod-to-pod address preservation).
import { spawn } from 'node:child_process';
import type { TestNetns } from './netns.ts';

export interface PeerLogger {
  /** Peer addresses in arrival order (IPv4-mapped IPv6 written as IPv4). */
  peers: string[];
  ready: Promise<void>;
  stop: () => void;
}

/** Starts the server on `port` (IPv4 and IPv6) in `ns`; await `ready` before connecting. */
export function peerLogger(ns: TestNetns, port: number): PeerLogger {
  const code = `require('net').createServer((s)=>{console.log(s.remoteAddress);s.end()}).listen({port:${port},host:'::'},()=>console.log('ready'))`;
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const peers: string[] = [];
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    for (const line of d.split('\n').filter(Boolean)) {
      if (line === 'ready') onReady();
      else peers.push(line.replace(/^::ffff:/, ''));
    }
  });
  return { peers, ready, stop: () => child.kill() };
}
