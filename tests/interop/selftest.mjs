#!/usr/bin/env node
// selftest.mjs: checks peer.mjs against itself on loopback, so that the C
// interop tests can trust what it reports.  Four ethereumjs nodes:
//   A  both modes, caps snap/1 + tst/1 (generic, echoing)
//   B  both modes, bootstraps from A (DPT) and dials A (RLPx); pings A and
//      sends a tst/1 message on stdin commands; Disconnect(too many peers)
//      2 s after the Hello exchange
//   C  RLPx only, caps eth/68: A must drop it as a useless peer (0x03)
//   D  DPT only, bootstraps from A and must find B through A's neighbours
// then SIGTERM for A (and the others' own --duration) and clean exits.
// Bounded: 60 s overall deadline; exits 1 with the reason on any failure.
// Uses only Node built-ins, so it can say clearly when npm ci has not run.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'node_modules', '@ethereumjs', 'devp2p', 'package.json'))) {
  console.error(
    `FAIL: ${join(here, 'node_modules')} has no @ethereumjs/devp2p: run tools/setup.sh ` +
      `(or: cd tests/interop && npm ci) before the interop tests`,
  );
  process.exit(1);
}

const DEADLINE_MS = 60000;
const children = [];
let failed = false;

function die(msg) {
  if (failed) return;
  failed = true;
  console.error(`FAIL: ${msg}`);
  for (const c of children) {
    console.error(`--- ${c.name} events:`);
    for (const e of c.events) console.error(JSON.stringify(e));
    if (c.stderr) console.error(`--- ${c.name} stderr:\n${c.stderr}`);
  }
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  process.exit(1);
}
const overall = setTimeout(() => die(`overall deadline of ${DEADLINE_MS / 1000} s passed`), DEADLINE_MS);

function start(name, args) {
  const proc = spawn(process.execPath, [join(here, 'peer.mjs'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const c = { name, proc, events: [], waiters: [], stderr: '', exit: null };
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        die(`${name} printed a line that is not JSON: ${line}`);
        return;
      }
      c.events.push(ev);
      c.waiters = c.waiters.filter((w) => !(w.pred(ev) && (w.resolve(ev), true)));
    }
  });
  proc.stderr.on('data', (d) => (c.stderr += d));
  c.exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve((c.exit = { code, sig }))));
  children.push(c);
  return c;
}
// Resolves with the first event (already seen or future) matching pred.
function waitFor(c, what, pred, ms = 20000) {
  const seen = c.events.find(pred);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const t = setTimeout(() => die(`${c.name}: no ${what} within ${ms / 1000} s`), ms);
    c.waiters.push({ pred, resolve: (ev) => (clearTimeout(t), resolve(ev)) });
  });
}
function check(cond, msg) {
  if (!cond) die(msg);
  else console.log(`ok: ${msg}`);
}
const is = (ev, name, fields = {}) => ev.ev === name && Object.entries(fields).every(([k, v]) => ev[k] === v);

const A = start('A', ['--mode', 'both', '--caps', 'snap/1,tst/1:4', '--echo', '--duration', '50']);
const a = await waitFor(A, 'listening', (e) => is(e, 'listening'));
check(/^enode:\/\/[0-9a-f]{128}@127\.0\.0\.1:\d+(\?discport=\d+)?$/.test(a.enode), `A listens: ${a.enode}`);

const B = start('B', [
  '--mode', 'both', '--caps', 'snap/1,tst/1:4', '--bootnode', a.enode, '--dial', a.enode,
  '--stdin', '--disconnect-after', '2', '--disconnect-reason', '4', '--duration', '30',
]);
const b = await waitFor(B, 'listening', (e) => is(e, 'listening'));

// RLPx: Hello both ways, snap/1 and tst/1 matched with geth's offsets.
const bAdded = await waitFor(B, 'peer:added for A', (e) => is(e, 'peer:added', { id: a.id }));
const aAdded = await waitFor(A, 'peer:added for B', (e) => is(e, 'peer:added', { id: b.id }));
check(bAdded.inbound === false && aAdded.inbound === true, 'B dialled A (outbound at B, inbound at A)');
for (const [x, peer] of [[bAdded, a], [aAdded, b]]) {
  check(x.hello.version === 5 && x.hello.port === peer.tcpPort, `Hello v5 with ListenPort ${peer.tcpPort}`);
  check(JSON.stringify(x.hello.caps) === '["snap/1","tst/1"]', `Hello caps ${x.hello.caps}`);
  check(
    JSON.stringify(x.protocols) === '[{"cap":"snap/1","offset":16,"length":8},{"cap":"tst/1","offset":24,"length":4}]',
    'capabilities matched: snap/1 at 16, tst/1 at 24',
  );
}

// Base-protocol ping/pong (snappy-compressed after a v5 Hello) and a
// subprotocol message echoed back.
B.proc.stdin.write('ping all\nsend all tst/1 2 c3010203\n');
await waitFor(A, 'ping from B', (e) => is(e, 'ping', { dir: 'in', id: b.id }));
await waitFor(B, 'pong from A', (e) => is(e, 'pong', { dir: 'in', id: a.id }));
check(true, 'ping answered with pong');
const aMsg = await waitFor(A, 'tst/1 message', (e) => is(e, 'msg', { id: b.id, cap: 'tst/1' }));
const bMsg = await waitFor(B, 'tst/1 echo', (e) => is(e, 'msg', { id: a.id, cap: 'tst/1' }));
check(aMsg.code === 2 && aMsg.size === 4 && bMsg.code === 2 && bMsg.size === 4, 'tst/1 message code 2 (4 bytes) echoed');

// DPT: each in the other's table, with the right endpoints.
const bDpt = await waitFor(B, 'A in DPT table', (e) => is(e, 'dpt:peer:added', { id: a.id }));
const aDpt = await waitFor(A, 'B in DPT table', (e) => is(e, 'dpt:peer:added', { id: b.id }));
check(bDpt.udpPort === a.udpPort && bDpt.tcpPort === a.tcpPort, 'B has A with its UDP and TCP ports');
check(aDpt.udpPort === b.udpPort && aDpt.tcpPort === b.tcpPort, 'A has B with its UDP and TCP ports');

// A third node with only eth/68 shares nothing: useless peer (0x03).
const C = start('C', ['--mode', 'rlpx', '--caps', 'eth/68', '--dial', a.enode, '--duration', '10']);
const c = await waitFor(C, 'listening', (e) => is(e, 'listening'));
// Either side may detect it first: an ethereumjs dialer that reads the
// recipient's Hello in the same chunk as the ack disconnects before even
// sending its own Hello.
const useless = await waitFor(A, 'Disconnect between A and C', (e) =>
  is(e, 'disconnect:out', { id: c.id }) || (is(e, 'disconnect:in') && e.remote !== aAdded.remote));
check(useless.reason === 3 && useless.reasonName === 'USELESS_PEER', `A and an eth/68-only peer part as useless (0x03, ${useless.ev})`);
check(!A.events.some((e) => is(e, 'peer:added', { id: c.id })), 'the useless peer never became a peer');

// A discovery-only node finds B through A's neighbours.
const D = start('D', ['--mode', 'dpt', '--bootnode', a.enode, '--verbose', '--stdin', '--duration', '15']);
const d = await waitFor(D, 'listening', (e) => is(e, 'listening'));
check(d.tcpPort === null && d.udpPort > 0, 'D runs discovery only');
await waitFor(D, 'B found via A', (e) => is(e, 'dpt:peer:added', { id: b.id }));
check(true, 'D found B through A (findneighbours/neighbours, then ping/pong)');
const dMark = D.events.length;
D.proc.stdin.write(`findnode ${b.id.slice(0, 8)}\n`);
const nb = await waitFor(D, 'Neighbours from B', (e) => D.events.indexOf(e) >= dMark && is(e, 'dpt:neighbours'));
check(nb.peers.some((p) => p.id === a.id && p.udpPort === a.udpPort), 'findnode command: B answers with A in its Neighbours');

// B's Disconnect(too many peers) 2 s after the Hello, seen by both sides.
const bRem = await waitFor(B, 'peer:removed at B', (e) => is(e, 'peer:removed', { id: a.id }));
const aRem = await waitFor(A, 'peer:removed at A', (e) => is(e, 'peer:removed', { id: b.id }));
check(bRem.reason === 4 && bRem.by === 'us', 'B sent Disconnect(0x04 too many peers)');
check(aRem.reason === 4 && aRem.by === 'them' && aRem.reasonName === 'TOO_MANY_PEERS', 'A received Disconnect 0x04');

// Clean exits: A on SIGTERM, the others on their own or on SIGTERM too.
for (const x of [A, B, C, D]) x.proc.kill('SIGTERM');
for (const x of [A, B, C, D]) {
  const ex = await x.exited;
  check(ex.code === 0, `${x.name} exited with code 0 (${JSON.stringify(ex)})`);
  const last = x.events[x.events.length - 1];
  check(last && last.ev === 'exit', `${x.name}'s last event is exit (${last && last.reason})`);
  const errs = x.events.filter((e) => e.ev === 'error');
  check(errs.length === 0, `${x.name} reported no errors${errs.length ? ': ' + JSON.stringify(errs) : ''}`);
  const tables = x.events.filter((e) => e.ev === 'table');
  check(tables.length > 0, `${x.name} printed its table at exit`);
}
clearTimeout(overall);
console.log('selftest: all checks passed');
