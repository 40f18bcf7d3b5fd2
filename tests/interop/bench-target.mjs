#!/usr/bin/env node
// bench-target.mjs: an @ethereumjs/devp2p (v10) RLPx server and/or DPT in one
// process, as the baseline target of load benchmarks (our C load generator,
// or bench-load.mjs).  It counts what it completes and measures its own CPU:
//   handshakes  inbound connections that finished the RLPx handshake and the
//               Hello exchange (ethereumjs' peer:added)
//   pongs       discv4 pongs sent in reply to pings
// and prints one JSON line per --interval seconds:
//   {"ev":"stats","t":..,"handshakes":n,"pongs":n,"cpu_ms":n,"cpu_pct":x, ...}
// (n: in this interval) and at exit a summary over the busy intervals:
//   {"ev":"summary","busy_s":..,"handshakes":N,"handshakes_per_s":x,
//    "cpu_ms_per_handshake":x,"pongs":N,"pongs_per_s":x,"cpu_ms_per_pong":x,...}
// Peers are not kept: each one is disconnected (requested) as soon as it is
// added, so --max-peers never limits the rate.  Loopback only; bounded by
// --duration (default 60 s, max 600); exits 0 on SIGTERM/SIGINT.
//
// usage: node bench-target.mjs [--mode rlpx|dpt|both] [--host 127.0.0.1]
//          [--port N] [--udp-port N] [--key HEX] [--caps snap/1]
//          [--duration S] [--interval S] [--keep-peers]
import { parseArgs } from 'node:util';

import { Common, Mainnet } from '@ethereumjs/common';
import { DPT, ETH, RLPx, SNAP, genPrivateKey } from '@ethereumjs/devp2p';

const T0 = process.hrtime.bigint();
const now = () => Number(process.hrtime.bigint() - T0) / 1e9;
const emit = (ev, f) => process.stdout.write(JSON.stringify({ t: Math.round(now() * 1000) / 1000, ev, ...f }) + '\n');
function fail(msg) {
  process.stderr.write(`bench-target.mjs: ${msg}\n`);
  process.exit(2);
}

let a;
try {
  a = parseArgs({
    options: {
      mode: { type: 'string', default: 'both' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'udp-port': { type: 'string' },
      key: { type: 'string' },
      caps: { type: 'string', default: 'snap/1' },
      duration: { type: 'string', default: '60' },
      interval: { type: 'string', default: '1' },
      'keep-peers': { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (e) {
  fail(e.message);
}
const num = (k, lo, hi) => {
  const v = Number(a[k]);
  if (!Number.isFinite(v) || v < lo || v > hi) fail(`--${k} must be in [${lo}, ${hi}]`);
  return v;
};
if (!['rlpx', 'dpt', 'both'].includes(a.mode)) fail('--mode must be rlpx, dpt or both');
if (!/^127\.\d+\.\d+\.\d+$/.test(a.host) && a.host !== '::1') fail('--host must be loopback');
const port = num('port', 0, 65535);
const udpPortArg = a['udp-port'] !== undefined ? num('udp-port', 0, 65535) : port;
const duration = num('duration', 1, 600);
const interval = num('interval', 0.1, 60);
const key = a.key !== undefined ? Uint8Array.from(Buffer.from(a.key.replace(/^0x/, ''), 'hex')) : genPrivateKey();
if (key.length !== 32) fail('--key must be 32 bytes of hex');
const capabilities = a.caps.split(',').map((s) => {
  if (s === 'snap/1') return SNAP.snap;
  const m = /^eth\/(\d+)$/.exec(s);
  if (m && ETH[`eth${m[1]}`]) return ETH[`eth${m[1]}`];
  return fail(`unsupported cap ${s} (snap/1 or eth/N)`);
});
const common = new Common({ chain: Mainnet });

const total = { handshakes: 0, pongs: 0, conns: 0, removed: 0, errors: 0 };
let rlpx = null;
let dpt = null;
let tcpPort = null;
let udpPort = null;

if (a.mode !== 'rlpx') {
  dpt = new DPT(key, {
    endpoint: { address: a.host, udpPort: null, tcpPort: null },
    common,
    shouldFindNeighbours: true,
    shouldGetDnsPeers: false,
  });
  const srv = dpt._server;
  const send = srv._send.bind(srv);
  srv._send = (peer, typename, data) => {
    if (typename === 'pong') total.pongs++;
    return send(peer, typename, data);
  };
  dpt.events.on('error', () => total.errors++);
  await new Promise((resolve, reject) => {
    srv._socket.once('error', reject);
    dpt.events.once('listening', resolve);
    dpt.bind(udpPortArg, a.host);
  });
  udpPort = srv._socket.address().port;
  // Kernel buffer for bursts from a flooding load generator.
  try {
    srv._socket.setRecvBufferSize(4 << 20);
  } catch {
    /* keep the default */
  }
}
if (a.mode !== 'dpt') {
  rlpx = new RLPx(key, { maxPeers: 100000, capabilities, common, listenPort: port === 0 ? null : port });
  rlpx.events.on('peer:added', (peer) => {
    total.handshakes++;
    if (!a['keep-peers']) peer.disconnect(0);
  });
  rlpx.events.on('peer:removed', () => total.removed++);
  rlpx.events.on('peer:error', () => total.errors++);
  rlpx.events.on('error', () => total.errors++);
  rlpx._server.on('connection', () => total.conns++);
  await new Promise((resolve, reject) => {
    rlpx._server.once('error', reject);
    rlpx.events.once('listening', resolve);
    rlpx.listen(port, a.host);
  });
  tcpPort = rlpx._server.address().port;
  rlpx._listenPort = tcpPort;
}
if (dpt) dpt._server._endpoint = { address: a.host, udpPort, tcpPort };
const id = Buffer.from((rlpx ?? dpt).id).toString('hex');
const host = a.host.includes(':') ? `[${a.host}]` : a.host;
const tp = tcpPort ?? udpPort;
emit('listening', {
  pid: process.pid,
  id,
  enode: `enode://${id}@${host}:${tp}` + (udpPort !== null && udpPort !== tp ? `?discport=${udpPort}` : ''),
  tcpPort,
  udpPort,
});

// Per-interval stats; the summary sums the intervals that did work.
let last = { ...total, cpu: process.cpuUsage(), t: now() };
const busy = { s: 0, cpu_ms: 0, handshakes: 0, pongs: 0, cpu_ms_h: 0, cpu_ms_p: 0 };
function sample() {
  const cpu = process.cpuUsage();
  const t = now();
  const dt = t - last.t;
  const cpuMs = (cpu.user - last.cpu.user + cpu.system - last.cpu.system) / 1000;
  const d = { handshakes: total.handshakes - last.handshakes, pongs: total.pongs - last.pongs };
  emit('stats', {
    dt: Math.round(dt * 1000) / 1000,
    handshakes: d.handshakes,
    pongs: d.pongs,
    conns: total.conns - last.conns,
    errors: total.errors - last.errors,
    cpu_ms: Math.round(cpuMs),
    cpu_pct: Math.round((cpuMs / 10 / dt) * 10) / 10,
    rss_mb: Math.round(process.memoryUsage().rss / 1048576),
  });
  if (d.handshakes > 0 || d.pongs > 0) {
    busy.s += dt;
    busy.cpu_ms += cpuMs;
    busy.handshakes += d.handshakes;
    busy.pongs += d.pongs;
    // Attribute an interval's CPU to the kind of work it did (both kinds
    // at once: split by nothing, count it for neither).
    if (d.pongs === 0) busy.cpu_ms_h += cpuMs;
    if (d.handshakes === 0) busy.cpu_ms_p += cpuMs;
  }
  last = { ...total, cpu, t };
}
const timer = setInterval(sample, interval * 1000);

let done = false;
function finish(reason) {
  if (done) return;
  done = true;
  clearInterval(timer);
  sample();
  const r = (x, n = 1) => Math.round(x * n) / n;
  emit('summary', {
    reason,
    busy_s: r(busy.s, 1000),
    cpu_ms: r(busy.cpu_ms),
    cpu_pct: busy.s > 0 ? r(busy.cpu_ms / 10 / busy.s, 10) : 0,
    handshakes: busy.handshakes,
    handshakes_per_s: busy.s > 0 ? r(busy.handshakes / busy.s, 10) : 0,
    cpu_ms_per_handshake: busy.handshakes > 0 && busy.cpu_ms_h > 0 ? r(busy.cpu_ms_h / busy.handshakes, 100) : null,
    pongs: busy.pongs,
    pongs_per_s: busy.s > 0 ? r(busy.pongs / busy.s, 10) : 0,
    cpu_ms_per_pong: busy.pongs > 0 && busy.cpu_ms_p > 0 ? r(busy.cpu_ms_p / busy.pongs, 1000) : null,
    errors: total.errors,
  });
  try {
    if (rlpx) rlpx.destroy();
    if (dpt) dpt.destroy();
  } catch {
    /* exiting anyway */
  }
  setTimeout(() => process.exit(0), 100);
}
process.on('SIGTERM', () => finish('sigterm'));
process.on('SIGINT', () => finish('sigint'));
process.on('uncaughtException', () => total.errors++);
process.on('unhandledRejection', () => total.errors++);
setTimeout(() => finish('duration'), duration * 1000);
const ppid0 = process.ppid;
setInterval(() => process.ppid !== ppid0 && finish('parent-gone'), 1000).unref();
