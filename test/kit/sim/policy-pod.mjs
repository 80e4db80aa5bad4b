// A pod's NetworkPolicy test program, run inside the pod's network namespace by the simulator:
//   node policy-pod.mjs 80,81
// Servers: TCP and UDP on every port given. TCP writes the peer's address as it sees it (one line),
// then echoes what it receives; UDP echoes every datagram to its sender.
// Client: JSON lines on stdin, one answer line per request on stdout (after "ready"):
//   {"id":1,"op":"probe","targets":[{"ip":"10.244.1.2","port":80,"proto":"tcp"}],"timeoutMs":800}
//     → {"id":1,"results":[true],"outcomes":["ok"]}  a connection (TCP) or an echo (UDP, re-sent every
//                                      150 ms) in time; outcomes tells a denial's kind: "timeout" (no
//                                      answer: a drop), or the socket's error code ("ECONNREFUSED": a
//                                      RST or an ICMP unreachable, i.e. a reject; "EHOSTUNREACH" …)
//   {"id":2,"op":"hold","flow":"f1","ip":…,"port":80,"proto":"udp","everyMs":50}
//     → {"id":2,"ok":true}             a long-lived flow: one TCP connection (or one UDP socket, so one
//                                      5-tuple) sending a line every everyMs; its replies are counted
//   {"id":3,"op":"flow","flow":"f1"}  → {"id":3,"replies":N,"lastReplyAgoMs":M,"error":…}
//   {"id":4,"op":"close","flow":"f1"} → {"id":4,"ok":true}
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const ports = String(process.argv[2] ?? '80,81')
  .split(',')
  .map(Number);
const v6 = (ip) => ip.includes(':');

async function listen() {
  for (const port of ports) {
    await new Promise((resolve, reject) => {
      const tcp = createServer((s) => {
        s.on('error', () => s.destroy());
        s.write(`${(s.remoteAddress ?? '?').replace(/^::ffff:/, '')}\n`);
        s.pipe(s);
      });
      tcp.once('error', reject);
      tcp.listen(port, '::', resolve);
    });
    for (const type of ['udp4', 'udp6']) {
      const udp = createSocket({ type, ipv6Only: type === 'udp6' });
      udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
      udp.on('error', () => {});
      await new Promise((resolve) => udp.bind(port, type === 'udp4' ? '0.0.0.0' : '::', resolve));
    }
  }
}

function probeTcp(ip, port, timeoutMs) {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port });
    const done = (ok) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.once('data', () => done('ok'));
    s.once('error', (e) => done(e.code ?? 'error'));
  });
}

function probeUdp(ip, port, timeoutMs) {
  return new Promise((resolve) => {
    const s = createSocket(v6(ip) ? 'udp6' : 'udp4');
    let resend;
    const done = (ok) => {
      clearTimeout(timer);
      clearInterval(resend);
      s.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.on('message', () => done('ok'));
    s.on('error', (e) => done(e.code ?? 'error'));
    const send = () => s.send('probe', port, ip, () => {});
    send();
    resend = setInterval(send, 150);
  });
}

const flows = new Map();

function hold(id, ip, port, proto, everyMs) {
  const f = { replies: 0, lastReplyAt: 0, error: undefined, close: () => {} };
  const reply = () => {
    f.replies++;
    f.lastReplyAt = Date.now();
  };
  if (proto === 'tcp') {
    const s = connect({ host: ip, port });
    s.on('data', reply);
    s.on('error', (e) => (f.error = e.message));
    s.on('close', () => (f.error ??= 'closed'));
    const t = setInterval(() => s.writable && s.write('ping\n'), everyMs);
    f.close = () => {
      clearInterval(t);
      s.destroy();
    };
  } else {
    const s = createSocket(v6(ip) ? 'udp6' : 'udp4');
    s.on('message', reply);
    s.on('error', (e) => (f.error = e.message));
    // One socket, one source port: every datagram belongs to the same conntrack entry.
    const t = setInterval(() => s.send('ping', port, ip, () => {}), everyMs);
    f.close = () => {
      clearInterval(t);
      s.close();
    };
  }
  flows.set(id, f);
}

await listen();
process.stdout.write('ready\n');
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
createInterface({ input: process.stdin }).on('line', async (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  if (req.op === 'probe') {
    const outcomes = await Promise.all(
      req.targets.map((t) => (t.proto === 'udp' ? probeUdp : probeTcp)(t.ip, t.port, req.timeoutMs ?? 800)),
    );
    out({ id: req.id, results: outcomes.map((o) => o === 'ok'), outcomes });
  } else if (req.op === 'hold') {
    hold(req.flow, req.ip, req.port, req.proto, req.everyMs ?? 50);
    out({ id: req.id, ok: true });
  } else if (req.op === 'flow') {
    const f = flows.get(req.flow);
    out({
      id: req.id,
      replies: f?.replies ?? 0,
      lastReplyAgoMs: f && f.lastReplyAt ? Date.now() - f.lastReplyAt : null,
      error: f?.error ?? null,
    });
  } else if (req.op === 'close') {
    flows.get(req.flow)?.close();
    flows.delete(req.flow);
    out({ id: req.id, ok: true });
  }
});
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
