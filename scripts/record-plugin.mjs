#!/usr/bin/env node
// A recording network driver + IPAM plugin: it listens on a legacy plugin socket, appends every
// request dockerd sends as one JSON line {"path", "contentType", "accept", "body"} to a file, and
// answers just enough for dockerd to go on (pools and addresses from what dockerd asks, else
// 10.200.N.0/24 and fd00:200:N::/64; a veth pair per Join, removed at Leave). Its answers are not
// a reference: test/fixtures/dockerd-*/ keep only the requests.
//
//   node scripts/record-plugin.mjs SOCKET OUT.jsonl
//
// Made for scripts/record-engine.sh; stops on SIGTERM (removing the socket and its veths).
import { execFileSync } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';

const [socket, out] = process.argv.slice(2);
if (!socket || !out) {
  console.error('usage: record-plugin.mjs SOCKET OUT.jsonl');
  process.exit(2);
}

const pools = new Map(); // PoolID -> { cidr, v6, next }
const networks = new Map(); // NetworkID -> { gateway4, gateway6, internal }
const endpoints = new Map(); // EndpointID -> NetworkID
const veths = new Set();
let poolSeq = 0;

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const plain = (cidr) => (cidr ? String(cidr).split('/')[0] : '');

function requestPool(b) {
  poolSeq += 1;
  const id = `pool-${poolSeq}`;
  const cidr = b.Pool || (b.V6 ? `fd00:200:${poolSeq}::/64` : `10.200.${poolSeq}.0/24`);
  pools.set(id, { cidr, v6: Boolean(b.V6), next: 2 });
  return { PoolID: id, Pool: cidr, Data: {} };
}

function requestAddress(b) {
  const p = pools.get(b.PoolID);
  if (!p) return { Err: `no pool ${b.PoolID}` };
  const len = p.cidr.split('/')[1];
  if (b.Address) return { Address: `${b.Address}/${len}`, Data: {} };
  const base = p.cidr.split('/')[0];
  const isGw = b.Options?.RequestAddressType === 'com.docker.network.gateway';
  const n = isGw ? 1 : p.next++;
  const addr = p.v6 ? `${base.replace(/::$/, '::')}${n.toString(16)}` : base.split('.').slice(0, 3).concat(String(n)).join('.');
  return { Address: `${addr}/${len}`, Data: {} };
}

function join(b) {
  const n = networks.get(b.NetworkID) ?? {};
  const id = String(b.EndpointID).slice(0, 10);
  const host = `mnrh${id}`;
  const peer = `mnrc${id}`;
  ip('link', 'add', 'name', host, 'type', 'veth', 'peer', 'name', peer);
  ip('link', 'set', 'dev', host, 'up');
  veths.add(host);
  const r = { InterfaceName: { SrcName: peer, DstPrefix: 'eth' } };
  if (n.internal) return { ...r, DisableGatewayService: true };
  return { ...r, ...(n.gateway4 ? { Gateway: n.gateway4 } : {}), ...(n.gateway6 ? { GatewayIPv6: n.gateway6 } : {}) };
}

function leave(b) {
  const host = `mnrh${String(b.EndpointID).slice(0, 10)}`;
  if (veths.delete(host)) ip('link', 'del', host);
  return {};
}

const answer = (path, b) => {
  switch (path) {
    case '/Plugin.Activate':
      return { Implements: ['NetworkDriver', 'IpamDriver'] };
    case '/NetworkDriver.GetCapabilities':
      return { Scope: 'local', ConnectivityScope: 'local', RequiresMACAddress: true };
    case '/IpamDriver.GetCapabilities':
      return { RequiresMACAddress: true };
    case '/IpamDriver.GetDefaultAddressSpaces':
      return { LocalDefaultAddressSpace: 'mylocal', GlobalDefaultAddressSpace: 'myglobal' };
    case '/IpamDriver.RequestPool':
      return requestPool(b);
    case '/IpamDriver.RequestAddress':
      return requestAddress(b);
    case '/NetworkDriver.CreateNetwork':
      networks.set(b.NetworkID, {
        gateway4: plain(b.IPv4Data?.[0]?.Gateway),
        gateway6: plain(b.IPv6Data?.[0]?.Gateway),
        internal: b.Options?.['com.docker.network.internal'] === true,
      });
      return {};
    case '/NetworkDriver.CreateEndpoint':
      endpoints.set(b.EndpointID, b.NetworkID);
      return b.Interface?.MacAddress ? {} : { Interface: { MacAddress: '02:42:0a:c8:00:99' } };
    case '/NetworkDriver.Join':
      return join(b);
    case '/NetworkDriver.Leave':
      return leave(b);
    case '/NetworkDriver.EndpointOperInfo':
      return { Value: {} };
    case '/NetworkDriver.DeleteNetwork':
      networks.delete(b.NetworkID);
      return {};
    case '/NetworkDriver.DeleteEndpoint':
      endpoints.delete(b.EndpointID);
      return {};
    default:
      // ReleaseAddress, ReleasePool, Program/RevokeExternalConnectivity, DiscoverNew, ...
      return {};
  }
};

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    let body = null;
    let reply;
    try {
      body = text.trim() ? JSON.parse(text) : null;
      reply = answer(req.url, body ?? {});
    } catch (err) {
      reply = { Err: `recorder: ${err instanceof Error ? err.message : String(err)}` };
    }
    appendFileSync(out, `${JSON.stringify({ path: req.url, contentType: req.headers['content-type'] ?? null, accept: req.headers.accept ?? null, body })}\n`);
    res.writeHead(reply.Err ? 500 : 200, { 'Content-Type': 'application/vnd.docker.plugins.v1+json' });
    res.end(JSON.stringify(reply));
  });
});

rmSync(socket, { force: true });
server.listen(socket, () => console.log(`recording on ${socket} into ${out}`));
process.on('SIGTERM', () => {
  for (const v of veths) ip('link', 'del', v);
  server.close();
  rmSync(socket, { force: true });
  process.exit(0);
});
