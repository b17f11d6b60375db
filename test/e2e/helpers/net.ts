/** Small clients and servers for reachability checks, run on the host, in a namespace or in a container's netns. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dockerOk, sh, sleep } from './sh.js';

/** Prefix that runs a command in a namespace (or on the host when undefined). */
export const inNs = (ns: string | undefined, argv: string[]): [string, string[]] =>
  ns ? ['ip', ['netns', 'exec', ns, ...argv]] : [argv[0] as string, argv.slice(1)];

/** An HTTP GET with busybox nc (no DNS, no TLS); resolves with the response body or '' on failure. */
export async function httpGet(ip: string, port: number, ns?: string): Promise<string> {
  const [cmd, args] = inNs(ns, ['busybox', 'nc', '-w', '3', ip, String(port)]);
  const r = await sh(cmd, args, { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 10_000 });
  return r.exitCode === 0 ? (r.stdout.split('\r\n\r\n')[1] ?? '') : '';
}

/** The same from inside a container. */
export async function httpGetFrom(container: string, ip: string, port: number): Promise<string> {
  const r = await sh('docker', ['exec', '-i', container, 'nc', '-w', '3', ip, String(port)], {
    input: 'GET / HTTP/1.0\r\n\r\n',
    timeoutMs: 10_000,
  });
  return r.exitCode === 0 ? (r.stdout.split('\r\n\r\n')[1] ?? '') : '';
}

const UDP_CLIENT = `const s=require('dgram').createSocket(process.argv[1].includes(':')?'udp6':'udp4');
s.on('message',(m)=>{process.stdout.write(String(m));process.exit(0)});
s.send('ping',Number(process.argv[2]),process.argv[1]);setTimeout(()=>process.exit(3),2000);`;

/** Sends "ping" over UDP and resolves with the answer ('' on timeout). */
export async function udpAsk(ip: string, port: number, ns?: string): Promise<string> {
  const [cmd, args] = inNs(ns, [process.execPath, '-e', UDP_CLIENT, ip, String(port)]);
  const r = await sh(cmd, args, { timeoutMs: 10_000 });
  return r.exitCode === 0 ? r.stdout : '';
}

const UDP_SERVER = `const s=require('dgram').createSocket('udp4');
s.on('message',(m,r)=>s.send('pong',r.port,r.address));s.bind(Number(process.argv[1]));`;

/** A UDP echo server inside a container's network namespace (busybox has none). */
export async function udpServerIn(container: string, port: number): Promise<ChildProcess> {
  const pid = await dockerOk('inspect', container, '--format', '{{.State.Pid}}');
  const p = spawn('nsenter', ['-t', pid, '-n', process.execPath, '-e', UDP_SERVER, String(port)], { stdio: 'ignore' });
  await sleep(300);
  return p;
}
