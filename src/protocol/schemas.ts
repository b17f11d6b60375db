/**
 * ajv schemas for every request dockerd sends, each compiled on its first use (compiling all
 * at import cost the plugin's start ~50 ms before its socket answered), and ajv itself is loaded
 * after the socket listens (loadSchemas: another ~40 ms); `none` (Plugin.Activate and the other
 * calls without arguments) needs no ajv, so dockerd's handshake never waits for it. They check what we read
 * and tolerate fields newer dockerds add (additionalProperties stays open). Strings are bounded
 * so hostile input cannot make us carry megabytes into logs or commands.
 */
import type { Ajv, ValidateFunction } from 'ajv';
import { invalid } from '../errors.js';

let ajv: Ajv | undefined;
let loading: Promise<void> | undefined;

/** Loads ajv once; validate() needs it for every schema but `none`. */
export function loadSchemas(): Promise<void> {
  loading ??= import('ajv').then((m) => {
    ajv = new m.Ajv({ allErrors: false, strict: true });
  });
  return loading;
}

const id = { type: 'string', maxLength: 128 } as const;
const str = { type: 'string', maxLength: 4096 } as const;
const optionsMap = { type: ['object', 'null'] } as const;
const stringMap = { type: ['object', 'null'], additionalProperties: { type: 'string', maxLength: 4096 } } as const;
const ipamData = {
  type: ['array', 'null'],
  maxItems: 64,
  items: {
    type: 'object',
    required: ['Pool'],
    properties: { AddressSpace: str, Pool: str, Gateway: str, AuxAddresses: stringMap },
  },
} as const;

const obj = (required: string[], properties: Record<string, unknown>): object => ({ type: 'object', required, properties });
const netEp = obj(['NetworkID', 'EndpointID'], { NetworkID: id, EndpointID: id });

export const schemas = {
  none: { type: ['object', 'null'] },
  createNetwork: obj(['NetworkID'], { NetworkID: id, Options: optionsMap, IPv4Data: ipamData, IPv6Data: ipamData }),
  networkOnly: obj(['NetworkID'], { NetworkID: id }),
  createEndpoint: obj(['NetworkID', 'EndpointID'], {
    NetworkID: id,
    EndpointID: id,
    Interface: { type: ['object', 'null'], properties: { Address: str, AddressIPv6: str, MacAddress: str } },
    Options: optionsMap,
  }),
  join: obj(['NetworkID', 'EndpointID'], { NetworkID: id, EndpointID: id, SandboxKey: str, Options: optionsMap }),
  netEp,
  programExternalConnectivity: obj(['NetworkID', 'EndpointID'], { NetworkID: id, EndpointID: id, Options: optionsMap }),
  discover: obj([], { DiscoveryType: { type: 'integer' } }),
  requestPool: obj([], { AddressSpace: str, Pool: str, SubPool: str, Options: stringMap, V6: { type: 'boolean' } }),
  poolOnly: obj(['PoolID'], { PoolID: str }),
  requestAddress: obj(['PoolID'], { PoolID: str, Address: str, Options: stringMap }),
  releaseAddress: obj(['PoolID', 'Address'], { PoolID: str, Address: str }),
} as const;

export type SchemaName = keyof typeof schemas;

const compiled = new Map<SchemaName, ValidateFunction>();

/** Validates a request body; throws INVALID_REQUEST naming the field and the reason. */
export function validate<T>(name: SchemaName, body: unknown): T {
  if (name === 'none') {
    if (typeof body === 'object' && !Array.isArray(body)) return body as T; // an object, or null
    throw invalid('body', 'must be object,null');
  }
  let v = compiled.get(name);
  if (!v) {
    if (!ajv) throw new Error('validate: loadSchemas() has not finished');
    v = ajv.compile(schemas[name]);
    compiled.set(name, v);
  }
  if (v(body)) return body as T;
  const e = v.errors?.[0];
  // A missing property is named in full ("IPv4Data.0.Pool"), not by its parent object.
  const path = e
    ? [e.instancePath.replace(/^\//, '').replaceAll('/', '.'), (e.params as { missingProperty?: string }).missingProperty]
    : [];
  const field = path.filter((p) => p).join('.') || 'body';
  const why = e?.keyword === 'required' ? 'is required' : (e?.message ?? 'is invalid');
  throw invalid(field, why);
}
