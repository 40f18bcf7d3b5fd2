#!/usr/bin/env node
// bench-baseline.mjs: the ethereumjs-vs-ethereumjs sanity figures.  Starts
// bench-target.mjs (one process: RLPx server + DPT), drives it with
// bench-load.mjs for --seconds each (default 10): first RLPx handshakes+Hello,
// then discv4 ping->pong, and prints the target's own figures (rate, CPU per
// operation, the one-core ceiling 1000/cpu_ms_per_op) plus the load side's.
// Bounded: about 2 x --seconds + 10 s.  Not a timed test.
//
// usage: node bench-baseline.mjs [--seconds S] [--conns W] [--window W] [--json]
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const a = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    conns: { type: 'string', default: '8' },
    window: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
}).values;
const seconds = Math.min(Math.max(Number(a.seconds) || 10, 2), 60);

function run(script, args, onLine) {
  const p = spawn(process.execPath, [join(here, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        onLine(JSON.parse(line));
      } catch {
        /* not ours */
      }
    }
  });
  p.done = new Promise((resolve) => p.on('exit', resolve));
  return p;
}
const killer = setTimeout(() => {
  console.error('bench-baseline: overall deadline passed');
  process.exit(1);
}, (2 * seconds + 30) * 1000);

async function phase(kind) {
  let listening;
  let summary;
  const gotListening = new Promise((resolve) => (listening = resolve));
  const target = run('bench-target.mjs', ['--mode', kind, '--duration', String(seconds + 20)], (ev) => {
    if (ev.ev === 'listening') listening(ev);
    if (ev.ev === 'summary') summary = ev;
  });
  const l = await gotListening;
  let load;
  const args = kind === 'rlpx' ? ['--rlpx', l.enode, '--conns', a.conns] : ['--dpt', l.enode, '--window', a.window];
  const loader = run('bench-load.mjs', [...args, '--duration', String(seconds)], (ev) => {
    if (ev.ev === 'load') load = ev;
  });
  await loader.done;
  target.kill('SIGTERM');
  await target.done;
  return { target: summary, load };
}

const rl = await phase('rlpx');
const dp = await phase('dpt');
clearTimeout(killer);
const ceil = (ms) => (ms ? Math.round(1000 / ms) : null);
const out = {
  rlpx: {
    handshakes_per_s: rl.target?.handshakes_per_s,
    target_cpu_pct: rl.target?.cpu_pct,
    cpu_ms_per_handshake: rl.target?.cpu_ms_per_handshake,
    one_core_ceiling_per_s: ceil(rl.target?.cpu_ms_per_handshake),
    load: rl.load,
  },
  dpt: {
    pongs_per_s: dp.target?.pongs_per_s,
    target_cpu_pct: dp.target?.cpu_pct,
    cpu_ms_per_pong: dp.target?.cpu_ms_per_pong,
    one_core_ceiling_per_s: ceil(dp.target?.cpu_ms_per_pong),
    load: dp.load,
  },
};
if (a.json) {
  console.log(JSON.stringify(out));
} else {
  const r = out.rlpx;
  const d = out.dpt;
  console.log(`ethereumjs RLPx server: ${r.handshakes_per_s} inbound handshakes+Hello/s at ${r.target_cpu_pct}% CPU, ` +
    `${r.cpu_ms_per_handshake} ms CPU each (one-core ceiling ~${r.one_core_ceiling_per_s}/s); ` +
    `load side ${r.load?.per_s}/s using ${r.load?.cpu_ms} ms CPU over ${r.load?.seconds} s`);
  console.log(`ethereumjs DPT: ${d.pongs_per_s} pongs/s at ${d.target_cpu_pct}% CPU, ${d.cpu_ms_per_pong} ms CPU each ` +
    `(one-core ceiling ~${d.one_core_ceiling_per_s}/s); load side ${d.load?.per_s}/s, ${d.load?.errors} pings lost`);
}
