#!/usr/bin/env node
// bench-load.mjs: a load generator written with @ethereumjs/devp2p itself,
// for the ethereumjs-vs-ethereumjs sanity figures (our C load generator
// replaces it for the real benchmarks).  Loopback only, bounded by
// --duration (default 10 s, max 120).
//
//   --rlpx ENODE --conns W   W connections in flight: each does the EIP-8
//                            handshake and Hello with a key from a pool, then
//                            Disconnect(requested) and closes; next one starts.
//   --dpt ENODE --window W   W pre-signed discv4 pings in flight (their `from`
//                            has no UDP port, so the target does not ping back);
//                            each pong received sends the next ping.
// Prints one JSON line at the end:
//   {"ev":"load","kind":"rlpx"|"dpt","done":N,"per_s":x,"cpu_ms":..,"errors":..}
import dgram from 'node:dgram';
import net from 'node:net';
import { parseArgs } from 'node:util';

import { Common, Mainnet } from '@ethereumjs/common';
import { Peer, SNAP, encode, genPrivateKey, pk2id } from '@ethereumjs/devp2p';
import { secp256k1 } from 'ethereum-cryptography/secp256k1.js';

const emit = (ev, f) => process.stdout.write(JSON.stringify({ ev, ...f }) + '\n');
function fail(msg) {
  process.stderr.write(`bench-load.mjs: ${msg}\n`);
  process.exit(2);
}
let a;
try {
  a = parseArgs({
    options: {
      rlpx: { type: 'string' },
      dpt: { type: 'string' },
      conns: { type: 'string', default: '8' },
      window: { type: 'string', default: '64' },
      duration: { type: 'string', default: '10' },
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
const duration = num('duration', 1, 120);
function parseEnode(url) {
  const m = /^enode:\/\/([0-9a-f]{128})@(127\.\d+\.\d+\.\d+):(\d+)(\?discport=(\d+))?$/i.exec(url ?? '');
  if (!m) fail(`need a loopback IPv4 enode URL, got ${url}`);
  return { id: Uint8Array.from(Buffer.from(m[1], 'hex')), address: m[2], tcpPort: +m[3], udpPort: +(m[5] ?? m[3]) };
}
if ((a.rlpx === undefined) === (a.dpt === undefined)) fail('give exactly one of --rlpx ENODE, --dpt ENODE');

const common = new Common({ chain: Mainnet });
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
let doneCount = 0;
let errors = 0;
let stopping = false;
const deadline = Date.now() + duration * 1000;

function report(kind, extra = {}) {
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(cpu0);
  emit('load', {
    kind, done: doneCount, seconds: Math.round(s * 1000) / 1000, per_s: Math.round((doneCount / s) * 10) / 10,
    cpu_ms: Math.round((c.user + c.system) / 1000), errors, ...extra,
  });
  process.exit(0);
}

if (a.rlpx !== undefined) {
  const target = parseEnode(a.rlpx);
  const conns = num('conns', 1, 1000);
  // Distinct keys so that the target never sees the same node twice at once.
  const pool = Array.from({ length: Math.max(64, conns * 8) }, () => {
    const k = genPrivateKey();
    return { key: k, id: pk2id(secp256k1.getPublicKey(k, false)) };
  });
  let next = 0;
  const one = () => {
    if (stopping || Date.now() >= deadline) return;
    const { key, id } = pool[next++ % pool.length];
    const socket = new net.Socket();
    let finished = false;
    const end = (ok) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (ok) doneCount++;
      else errors++;
      socket.destroy();
      setImmediate(one);
    };
    const timer = setTimeout(() => end(false), 10000);
    socket.once('error', () => end(false));
    socket.once('close', () => end(false));
    socket.connect(target.tcpPort, target.address, () => {
      const peer = new Peer({
        socket, remoteId: target.id, privateKey: key, id, timeout: 10000,
        clientId: Buffer.from('bench-load'), capabilities: [SNAP.snap], common, port: null,
      });
      peer.events.on('error', () => {});
      peer.events.once('connect', () => {
        peer.disconnect(0);
        socket.end();
        end(true);
      });
    });
  };
  for (let i = 0; i < conns; i++) one();
  setTimeout(() => {
    stopping = true;
    report('rlpx', { conns });
  }, duration * 1000);
} else {
  const target = parseEnode(a.dpt);
  const window = num('window', 1, 4096);
  const keys = Array.from({ length: 8 }, () => genPrivateKey());
  const pings = [];
  for (let i = 0; i < 512; i++) {
    pings.push(encode('ping', {
      version: 4,
      from: { address: '127.0.0.1', udpPort: null, tcpPort: null },
      to: { address: target.address, udpPort: target.udpPort, tcpPort: target.tcpPort },
    }, keys[i % keys.length], common));
  }
  const sock = dgram.createSocket('udp4');
  let n = 0;
  let inflight = 0;
  let lastRx = Date.now();
  const send = () => {
    inflight++;
    const p = pings[n++ % pings.length];
    sock.send(p, 0, p.length, target.udpPort, target.address);
  };
  sock.on('message', (msg) => {
    if (msg.length < 98 || msg[97] !== 2) return; // pongs only
    doneCount++;
    inflight = Math.max(0, inflight - 1);
    lastRx = Date.now();
    if (!stopping) send();
  });
  sock.on('error', () => errors++);
  sock.bind(0, '127.0.0.1', () => {
    for (let i = 0; i < window; i++) send();
    // Lost datagrams: if nothing came back for 200 ms, refill the window.
    setInterval(() => {
      if (!stopping && Date.now() - lastRx > 200) {
        errors += inflight;
        inflight = 0;
        for (let i = 0; i < window; i++) send();
        lastRx = Date.now();
      }
    }, 100).unref();
  });
  setTimeout(() => {
    stopping = true;
    report('dpt', { window });
  }, duration * 1000);
}
