/** An address:port to listen on (MYNET_DNS_LISTEN). */
import { invalid } from '../errors.js';
import { parseIp } from '../ip/address.js';
import { PORT_MAX } from './port.js';

export interface Listen {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.153:53", "[::1]:53"; '' disables the server. */
export function parseListen(text: string): Listen | undefined {
  if (text === '') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !parseIp(host) || port > PORT_MAX)
    throw invalid('MYNET_DNS_LISTEN', `"${text}" is not address:port (e.g. 127.0.0.153:53, [::1]:53, or empty to disable)`);
  return { host, port };
}
