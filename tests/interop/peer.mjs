#!/usr/bin/env node
// peer.mjs: one @ethereumjs/devp2p (v10) node on loopback, driven by flags,
// reporting every event as one JSON object per line on stdout.  The C interop
// tests spawn it as the "real client" side: an RLPx server/dialer (ethereumjs
// RLPx + Peer) and/or a discovery v4 node (ethereumjs DPT).
//
// Bounded: exits by itself after --duration seconds (default 120, at most
// 3600), on SIGTERM/SIGINT, on the stdin command `quit`, or when its parent
// process goes away.  On exit it prints the table, sends Disconnect(client
// quitting) to its RLPx peers (ethereumjs' destroy()), and exits 0.
// Only loopback (and the unspecified address, which Linux routes locally) is
// ever dialled or sent to; anything else is refused and reported.
//
// Usage: node peer.mjs --help
import dgram from 'node:dgram';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

import { Common, Mainnet } from '@ethereumjs/common';
import {
  DISCONNECT_REASON,
  DPT,
  DisconnectReasonNames,
  ETH,
  Peer,
  RLPx,
  SNAP,
  decode as decodeDpt,
  genPrivateKey,
} from '@ethereumjs/devp2p';
import * as snappy from 'snappyjs';

const HELP = `usage: node peer.mjs [flags]
  --mode dpt|rlpx|both     what to run (default both)
  --key HEX                32-byte private key (default: random)
  --host ADDR              listen address, loopback only (default 127.0.0.1; ::1 works)
  --port N                 TCP and UDP port (default 0 = ephemeral, see "listening")
  --udp-port N             UDP port if different from --port
  --bootnode ENODE         DPT bootstrap (ping, then findneighbours); repeatable
  --dial ENODE             RLPx outbound connection; repeatable
  --caps LIST              comma list of name/version[:length] (default snap/1; "none" = no caps).
                           snap/1 and eth/62..68 use ethereumjs' classes (eth has a 5 s Status
                           timer); any other name is a generic protocol (length default 16)
  --client-id STR          Hello client id (default ethereumjs')
  --max-peers N            RLPx maxPeers (default 10, ethereumjs' default)
  --timeout MS             RLPx timeout: dial timeout and pong deadline (default 10000)
  --dpt-timeout MS         DPT ping timeout (default 4000)
  --refresh-interval MS    DPT refresh: each table node gets a findneighbours once per
                           interval (default 60000, ethereumjs' default)
  --duration S             exit after S seconds (default 120, max 3600)
  --disconnect-after S     send Disconnect S seconds after each peer is added
  --disconnect-reason N    reason for --disconnect-after (default 0 = requested)
  --ping / --no-ping       keep (default) or stop ethereumjs' own ping every 15 s
  --no-pong                never answer pings
  --echo                   echo every generic-protocol message back to its sender
  --autodial               give the DPT to RLPx: dial every node discovery finds
  --table-interval S       print the table every S seconds (default 5; 0 = only at exit)
  --verbose                also report every discovery packet in/out, and Neighbours' contents
  --stdin                  read commands from stdin (one per line):
                             dial ENODE | bootstrap ENODE | disconnect ID|all [REASON] |
                             send ID|all CAP CODE HEX | ping ID|all | findnode ID|all |
                             table | quit`;

const T0 = process.hrtime.bigint();
function emit(ev, fields = {}) {
  const t = Number(process.hrtime.bigint() - T0) / 1e9;
  process.stdout.write(JSON.stringify({ t: Math.round(t * 1000) / 1000, ev, ...fields }) + '\n');
}
function fail(msg) {
  emit('error', { src: 'args', msg });
  process.stderr.write(`peer.mjs: ${msg}\n`);
  process.exit(2);
}

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null);
const fromHex = (s) => Uint8Array.from(Buffer.from(s.replace(/^0x/, ''), 'hex'));

function isLoopback(addr) {
  if (typeof addr !== 'string') return false;
  const a = addr.replace(/^::ffff:/i, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === '::1';
}
// The unspecified address reaches this host on Linux; ethereumjs pings
// whatever a Ping's `from` says, so it can matter on loopback.
const isLocal = (addr) => isLoopback(addr) || addr === '0.0.0.0' || addr === '::';

function parseEnode(url) {
  const m = /^enode:\/\/([0-9a-fA-F]{128})@(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)(\?discport=(\d+))?$/.exec(url);
  if (!m) throw new Error(`malformed enode URL: ${url}`);
  const address = m[2].replace(/^\[|\]$/g, '');
  if (!isLoopback(address)) throw new Error(`not a loopback address: ${address}`);
  const tcpPort = Number(m[3]);
  const udpPort = m[5] !== undefined ? Number(m[5]) : tcpPort;
  if (tcpPort > 65535 || udpPort > 65535) throw new Error(`bad port in ${url}`);
  return { id: fromHex(m[1]), address, tcpPort, udpPort };
}
function enodeOf(idHex, address, tcp, udp) {
  const host = address.includes(':') ? `[${address}]` : address;
  return `enode://${idHex}@${host}:${tcp}` + (udp !== tcp ? `?discport=${udp}` : '');
}

// ---- arguments -------------------------------------------------------------
let args;
try {
  args = parseArgs({
    options: {
      mode: { type: 'string', default: 'both' },
      key: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'udp-port': { type: 'string' },
      bootnode: { type: 'string', multiple: true, default: [] },
      dial: { type: 'string', multiple: true, default: [] },
      caps: { type: 'string', default: 'snap/1' },
      'client-id': { type: 'string' },
      'max-peers': { type: 'string', default: '10' },
      timeout: { type: 'string', default: '10000' },
      'dpt-timeout': { type: 'string', default: '4000' },
      'refresh-interval': { type: 'string', default: '60000' },
      duration: { type: 'string', default: '120' },
      'disconnect-after': { type: 'string' },
      'disconnect-reason': { type: 'string', default: '0' },
      ping: { type: 'boolean', default: true },
      'no-ping': { type: 'boolean', default: false },
      'no-pong': { type: 'boolean', default: false },
      echo: { type: 'boolean', default: false },
      autodial: { type: 'boolean', default: false },
      'table-interval': { type: 'string', default: '5' },
      verbose: { type: 'boolean', default: false },
      stdin: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (e) {
  fail(e.message);
}
if (args.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}
function num(name, lo, hi) {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v < lo || v > hi) fail(`--${name} must be a number in [${lo}, ${hi}]`);
  return v;
}
const mode = args.mode;
if (!['dpt', 'rlpx', 'both'].includes(mode)) fail('--mode must be dpt, rlpx or both');
const useRlpx = mode !== 'dpt';
const useDpt = mode !== 'rlpx';
if (!isLoopback(args.host)) fail(`--host must be a loopback address, got ${args.host}`);
const tcpPortArg = num('port', 0, 65535);
const udpPortArg = args['udp-port'] !== undefined ? num('udp-port', 0, 65535) : tcpPortArg;
const duration = num('duration', 0.1, 3600);
const maxPeers = num('max-peers', 1, 100000);
const rlpxTimeout = num('timeout', 100, 600000);
const dptTimeout = num('dpt-timeout', 100, 600000);
const refreshInterval = num('refresh-interval', 1000, 3600000);
const tableInterval = num('table-interval', 0, 3600);
const discAfter = args['disconnect-after'] !== undefined ? num('disconnect-after', 0, 3600) : null;
const discReason = num('disconnect-reason', 0, 255);
const noPing = args['no-ping'] || !args.ping;
let privateKey;
if (args.key !== undefined) {
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(args.key)) fail('--key must be 32 bytes of hex');
  privateKey = fromHex(args.key);
} else {
  privateKey = genPrivateKey();
}
let bootnodes, dials;
try {
  bootnodes = args.bootnode.map(parseEnode);
  dials = args.dial.map(parseEnode);
} catch (e) {
  fail(e.message);
}
if (dials.length > 0 && !useRlpx) fail('--dial needs --mode rlpx or both');
if (bootnodes.length > 0 && !useDpt) fail('--bootnode needs --mode dpt or both');

// ---- capabilities ----------------------------------------------------------
// A generic subprotocol: counts messages, reports them, optionally echoes.
function genericCap(name, version, length) {
  class Generic {
    constructor(ver, peer, send) {
      this._peer = peer;
      this._send = send;
      this.cap = `${name}/${ver}`;
    }
    _handleMessage(code, data) {
      counters.msgIn++;
      emit('msg', { id: hex(this._peer.getId()), cap: this.cap, code, size: data.length });
      if (args.echo) this.send(code, data);
    }
    // data: the raw (uncompressed) message payload, usually RLP.
    send(code, data) {
      counters.msgOut++;
      const v = this._peer['_hello']?.protocolVersion;
      this._send(code, v !== undefined && v >= 5 ? snappy.compress(data) : data);
    }
  }
  Object.defineProperty(Generic, 'name', { value: `Generic_${name}` });
  return { name, version, length, constructor: Generic };
}
function parseCaps(list) {
  if (list === 'none' || list === '') return [];
  return list.split(',').map((s) => {
    const m = /^([A-Za-z0-9_-]{1,8})\/(\d{1,5})(:(\d{1,5}))?$/.exec(s.trim());
    if (!m) fail(`bad capability ${s} (want name/version[:length])`);
    const [name, version] = [m[1], Number(m[2])];
    if (name === 'snap' && version === 1 && m[4] === undefined) return SNAP.snap;
    if (name === 'eth' && ETH[`eth${version}`] !== undefined && m[4] === undefined) return ETH[`eth${version}`];
    return genericCap(name, version, m[4] !== undefined ? Number(m[4]) : 16);
  });
}
const capabilities = parseCaps(args.caps);
const capStr = (c) => `${c.name}/${c.version}`;

// ---- state -----------------------------------------------------------------
const common = new Common({ chain: Mainnet });
const counters = {
  handshakes: 0, peersRemoved: 0, pingIn: 0, pingOut: 0, pongIn: 0, pongOut: 0,
  msgIn: 0, msgOut: 0, dptIn: {}, dptOut: {}, errors: 0,
};
let rlpx = null;
let dpt = null;
let shuttingDown = false;
const timers = new Set();
function later(ms, fn) {
  const h = setTimeout(() => {
    timers.delete(h);
    fn();
  }, ms);
  timers.add(h);
  return h;
}
function error(src, err, extra = {}) {
  // After destroy(), ethereumjs' queued DPT pings throw "Server already destroyed".
  if (shuttingDown && src === 'dpt') return;
  counters.errors++;
  emit('error', { src, msg: String(err?.message ?? err), ...extra });
}

// ---- RLPx observation hooks (prototype-level: every Peer of this process) --
const remoteOf = (peer) => peer._socket.__remote ?? `${peer._socket.remoteAddress}:${peer._socket.remotePort}`;
const reasonName = (r) => (r === undefined || r === null ? null : (DisconnectReasonNames[r] ?? `0x${r.toString(16)}`));
const P = Peer.prototype;
const orig = {
  sendDisconnect: P._sendDisconnect,
  handleDisconnect: P._handleDisconnect,
  sendPing: P._sendPing,
  sendPong: P._sendPong,
  handlePing: P._handlePing,
  handlePong: P._handlePong,
  handleHello: P._handleHello,
  onSocketClose: P._onSocketClose,
};
P._sendDisconnect = function (reason) {
  if (!this._closed) {
    emit('disconnect:out', { id: hex(this.getId()), remote: remoteOf(this), reason, reasonName: reasonName(reason) });
  }
  return orig.sendDisconnect.call(this, reason);
};
P._handleDisconnect = function (payload) {
  const r = orig.handleDisconnect.call(this, payload);
  emit('disconnect:in', {
    id: hex(this.getId()), remote: remoteOf(this),
    reason: this._disconnectReason, reasonName: reasonName(this._disconnectReason),
  });
  return r;
};
P._sendPing = function () {
  if (noPing) return;
  counters.pingOut++;
  emit('ping', { dir: 'out', id: hex(this.getId()) });
  return orig.sendPing.call(this);
};
P._sendPong = function () {
  if (args['no-pong']) return;
  counters.pongOut++;
  emit('pong', { dir: 'out', id: hex(this.getId()) });
  return orig.sendPong.call(this);
};
P._handlePing = function () {
  counters.pingIn++;
  emit('ping', { dir: 'in', id: hex(this.getId()) });
  return orig.handlePing.call(this);
};
P._handlePong = function () {
  counters.pongIn++;
  emit('pong', { dir: 'in', id: hex(this.getId()) });
  return orig.handlePong.call(this);
};
P._handleHello = function (payload) {
  try {
    emit('hello', {
      remote: remoteOf(this),
      id: hex(payload[4]),
      hello: {
        version: Buffer.from(payload[0]).length ? Buffer.from(payload[0]).readUIntBE(0, Math.min(payload[0].length, 6)) : 0,
        clientId: Buffer.from(payload[1]).toString('utf8'),
        caps: payload[2].map((c) => `${Buffer.from(c[0]).toString('utf8')}/${c[1].length ? Buffer.from(c[1]).readUIntBE(0, Math.min(c[1].length, 6)) : 0}`),
        port: payload[3].length ? Buffer.from(payload[3]).readUIntBE(0, Math.min(payload[3].length, 6)) : 0,
        extra: payload.length - 5,
      },
    });
  } catch (e) {
    error('hello', e, { remote: remoteOf(this) });
  }
  return orig.handleHello.call(this, payload);
};
P._onSocketClose = function () {
  emit('conn:close', {
    remote: remoteOf(this), id: hex(this.getId()), connected: this._connected,
    reason: this._disconnectReason ?? null, reasonName: reasonName(this._disconnectReason),
    by: this._disconnectWe === true ? 'us' : this._disconnectWe === false ? 'them' : null,
  });
  return orig.onSocketClose.call(this);
};

function peerInfo(peer) {
  const h = peer.getHelloMessage();
  return {
    id: hex(peer.getId()),
    remote: remoteOf(peer),
    inbound: peer._socket.__inbound === true,
    hello: h && {
      version: h.protocolVersion, clientId: h.clientId,
      caps: h.capabilities.map(capStr), port: h.port,
    },
    protocols: peer._protocols.map((p) => ({ cap: `${p.protocol.cap ?? (p.protocol.constructor.name.toLowerCase() + '/' + (p.protocol._version ?? '?'))}`, offset: p.offset, length: p.length })),
  };
}
function findPeers(sel) {
  if (!rlpx) return [];
  const all = rlpx.getPeers();
  if (sel === 'all') return all;
  return all.filter((p) => hex(p.getId())?.startsWith(sel.toLowerCase()));
}

// ---- start -----------------------------------------------------------------
const v6 = args.host.includes(':');
let tcpPort = null;
let udpPort = null;
let myId = null;

function startRlpx() {
  rlpx = new RLPx(privateKey, {
    dpt: args.autodial ? dpt : null,
    maxPeers,
    capabilities,
    common,
    listenPort: tcpPortArg === 0 ? null : tcpPortArg,
    timeout: rlpxTimeout,
    ...(args['client-id'] !== undefined ? { clientId: Buffer.from(args['client-id'], 'utf8') } : {}),
  });
  myId = hex(rlpx.id);
  const onConnect = rlpx._onConnect.bind(rlpx);
  rlpx._onConnect = (socket, peerId) => {
    socket.__remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.__inbound = peerId === null;
    emit('conn:open', { remote: socket.__remote, inbound: peerId === null, id: hex(peerId) });
    return onConnect(socket, peerId);
  };
  const connect = rlpx.connect.bind(rlpx);
  rlpx.connect = (peer) => {
    if (!isLoopback(peer.address)) return Promise.reject(new Error(`refusing non-loopback dial to ${peer.address}`));
    return connect(peer);
  };
  rlpx.events.on('peer:added', (peer) => {
    counters.handshakes++;
    emit('peer:added', peerInfo(peer));
    for (const p of peer.getProtocols()) {
      if (p instanceof SNAP || p instanceof ETH) {
        p.events.on('message', (code, payload) => {
          counters.msgIn++;
          emit('msg', { id: hex(peer.getId()), cap: `${p instanceof SNAP ? 'snap' : 'eth'}/${p.getVersion()}`, code });
        });
      }
    }
    if (discAfter !== null) later(discAfter * 1000, () => peer.disconnect(discReason));
  });
  rlpx.events.on('peer:removed', (peer, reason, disconnectWe) => {
    counters.peersRemoved++;
    emit('peer:removed', {
      id: hex(peer.getId()), remote: remoteOf(peer), reason: reason ?? null, reasonName: reasonName(reason),
      by: disconnectWe === true ? 'us' : disconnectWe === false ? 'them' : null,
    });
  });
  rlpx.events.on('peer:error', (peer, err) => error('peer', err, { id: hex(peer.getId()), remote: remoteOf(peer) }));
  rlpx.events.on('error', (err) => error('rlpx', err));
  return new Promise((resolve, reject) => {
    rlpx.events.once('listening', () => {
      tcpPort = rlpx._server.address().port;
      rlpx._listenPort = tcpPort; // Hello ListenPort, also when bound to port 0
      resolve();
    });
    rlpx._server.once('error', reject);
    rlpx.listen(tcpPortArg, args.host);
  });
}

function startDpt() {
  dpt = new DPT(privateKey, {
    endpoint: { address: args.host, udpPort: null, tcpPort: null },
    common,
    timeout: dptTimeout,
    refreshInterval,
    shouldFindNeighbours: true,
    shouldGetDnsPeers: false,
    createSocket: () => dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' }),
  });
  myId = hex(dpt.id);
  const srv = dpt._server;
  const typeNames = { 1: 'ping', 2: 'pong', 3: 'findneighbours', 4: 'neighbours', 5: 'enrrequest', 6: 'enrresponse' };
  const handler = srv._handler.bind(srv);
  srv._handler = (msg, rinfo) => {
    const type = msg.length > 97 ? (typeNames[msg[97]] ?? `0x${msg[97].toString(16)}`) : 'short';
    counters.dptIn[type] = (counters.dptIn[type] ?? 0) + 1;
    if (args.verbose) {
      emit('dpt:in', { type, from: `${rinfo.address}:${rinfo.port}`, size: msg.length });
      if (type === 'neighbours') {
        try {
          const d = decodeDpt(msg, common).data;
          emit('dpt:neighbours', {
            from: `${rinfo.address}:${rinfo.port}`,
            peers: d.peers.map((x) => ({ id: hex(x.id), address: x.endpoint.address, udpPort: x.endpoint.udpPort, tcpPort: x.endpoint.tcpPort })),
          });
        } catch {
          /* the handler below reports it */
        }
      }
    }
    return handler(msg, rinfo);
  };
  const send = srv._send.bind(srv);
  srv._send = (peer, typename, data) => {
    if (!isLocal(peer.address)) {
      error('dpt', `refusing to send ${typename} to non-loopback ${peer.address}:${peer.udpPort}`);
      return new Uint8Array(32);
    }
    counters.dptOut[typename] = (counters.dptOut[typename] ?? 0) + 1;
    return send(peer, typename, data);
  };
  if (args.verbose) {
    const sock = srv._socket;
    const sockSend = sock.send.bind(sock);
    sock.send = (msg, off, len, port, addr, ...rest) => {
      const type = typeNames[msg[97]] ?? '?';
      emit('dpt:out', { type, to: `${addr}:${port}`, size: len });
      return sockSend(msg, off, len, port, addr, ...rest);
    };
  }
  const pinfo = (p) => ({ id: hex(p.id), address: p.address, udpPort: p.udpPort ?? null, tcpPort: p.tcpPort ?? null });
  dpt.events.on('peer:added', (p) => emit('dpt:peer:added', pinfo(p)));
  dpt.events.on('peer:removed', (p) => emit('dpt:peer:removed', pinfo(p)));
  dpt.events.on('peer:new', (p) => emit('dpt:peer:new', pinfo(p)));
  dpt.events.on('error', (err) => error('dpt', err));
  return new Promise((resolve, reject) => {
    srv._socket.once('error', reject);
    dpt.events.once('listening', () => {
      udpPort = srv._socket.address().port;
      resolve();
    });
    dpt.bind(udpPortArg, args.host);
  });
}

function table() {
  emit('table', {
    peers: dpt ? dpt.getPeers().map((p) => ({ id: hex(p.id), address: p.address, udpPort: p.udpPort ?? null, tcpPort: p.tcpPort ?? null })) : [],
    rlpx: rlpx ? rlpx.getPeers().map(peerInfo) : [],
    counters,
  });
}

let tableTimer = null;
function shutdown(reason, code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const h of timers) clearTimeout(h);
  if (tableTimer) clearInterval(tableTimer);
  try {
    table();
  } catch (e) {
    error('exit', e);
  }
  try {
    if (rlpx && rlpx._server) rlpx.destroy(); // Disconnect(client quitting) to every peer
  } catch (e) {
    error('exit', e);
  }
  try {
    if (dpt && dpt._server._socket) dpt.destroy();
  } catch (e) {
    error('exit', e);
  }
  // Give the Disconnect frames a moment to leave, then go (ethereumjs would
  // keep its 2 s socket.end timers and intervals alive otherwise).
  setTimeout(() => {
    emit('exit', { reason, code });
    process.exit(code);
  }, 200);
}

process.on('SIGTERM', () => shutdown('sigterm'));
process.on('SIGINT', () => shutdown('sigint'));
process.on('uncaughtException', (e) => error('uncaught', e));
process.on('unhandledRejection', (e) => error('unhandled', e));
later(duration * 1000, () => shutdown('duration'));
const ppid0 = process.ppid;
setInterval(() => {
  if (process.ppid !== ppid0) shutdown('parent-gone');
}, 1000).unref();

function command(line) {
  const w = line.trim().split(/\s+/);
  try {
    switch (w[0]) {
      case '':
        return;
      case 'dial': {
        if (!rlpx) throw new Error('no RLPx in this mode');
        const p = parseEnode(w[1] ?? '');
        rlpx.connect({ id: p.id, address: p.address, tcpPort: p.tcpPort }).catch((e) => error('dial', e, { enode: w[1] }));
        return;
      }
      case 'bootstrap': {
        if (!dpt) throw new Error('no DPT in this mode');
        const p = parseEnode(w[1] ?? '');
        dpt.bootstrap({ address: p.address, udpPort: p.udpPort, tcpPort: p.tcpPort });
        return;
      }
      case 'disconnect':
        for (const p of findPeers(w[1] ?? 'all')) p.disconnect(Number(w[2] ?? DISCONNECT_REASON.DISCONNECT_REQUESTED));
        return;
      case 'send':
        for (const p of findPeers(w[1] ?? 'all')) {
          const proto = p.getProtocols().find((x) => x.cap === w[2]);
          if (!proto) throw new Error(`peer ${hex(p.getId())} has no generic protocol ${w[2]}`);
          proto.send(Number(w[3]), fromHex(w[4] ?? 'c0'));
        }
        return;
      case 'ping':
        for (const p of findPeers(w[1] ?? 'all')) p._sendPing();
        return;
      case 'findnode': {
        // findneighbours to table nodes now (ethereumjs asks each node only
        // once per refresh interval, 60 s by default); target = own ID.
        if (!dpt) throw new Error('no DPT in this mode');
        const sel = (w[1] ?? 'all').toLowerCase();
        const targets = dpt.getPeers().filter((p) => sel === 'all' || hex(p.id).startsWith(sel));
        if (targets.length === 0) throw new Error(`no table node matches ${sel}`);
        for (const p of targets) dpt._server.findneighbours(p, dpt.id);
        return;
      }
      case 'table':
        table();
        return;
      case 'quit':
        shutdown('quit');
        return;
      default:
        throw new Error(`unknown command ${w[0]}`);
    }
  } catch (e) {
    error('stdin', e, { line });
  }
}

try {
  // DPT first so --autodial can hand it to RLPx.
  if (useDpt) await startDpt();
  if (useRlpx) await startRlpx();
} catch (e) {
  emit('error', { src: 'listen', msg: String(e?.message ?? e) });
  process.exit(1);
}
if (useDpt) {
  // What its Pings carry as `from`: ethereumjs' default is 0.0.0.0 with no ports.
  dpt._server._endpoint = { address: args.host, udpPort, tcpPort };
}
emit('listening', {
  enode: enodeOf(myId, args.host, tcpPort ?? udpPort, udpPort ?? tcpPort),
  id: myId,
  mode,
  host: args.host,
  tcpPort,
  udpPort,
  caps: capabilities.map(capStr),
  clientId: rlpx ? Buffer.from(rlpx.clientId).toString('utf8') : null,
});
if (tableInterval > 0) tableTimer = setInterval(table, tableInterval * 1000);
for (const b of bootnodes) dpt.bootstrap({ address: b.address, udpPort: b.udpPort, tcpPort: b.tcpPort });
for (const d of dials) {
  rlpx.connect({ id: d.id, address: d.address, tcpPort: d.tcpPort }).catch((e) => error('dial', e, { to: `${d.address}:${d.tcpPort}` }));
}
if (args.stdin) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', command);
}
