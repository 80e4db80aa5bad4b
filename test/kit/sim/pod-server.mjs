// A pod's test server, run inside a pod (or the outside) namespace by the simulator:
//   node pod-server.mjs PORT
// For every TCP connection it first writes the peer's address as it sees it (one line: a NAT on the
// way shows here), then counts what the peer sends, and when the peer half-closes writes the count
// (a second line) and closes. So `head -n1` of a connection is "who am I to you", and sending N bytes
// then reading two lines checks a transfer end to end. Prints "ready" once listening.
import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? 8080);
const server = createServer((socket) => {
  let received = 0;
  socket.on('error', () => socket.destroy());
  socket.write(`${(socket.remoteAddress ?? '?').replace(/^::ffff:/, '')}\n`);
  socket.on('data', (chunk) => (received += chunk.length));
  socket.on('end', () => socket.end(`${received}\n`));
});
server.listen(port, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
