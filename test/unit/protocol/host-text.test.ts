/**
 * Issue 14 item 9, request side: every request value that reaches `ip -batch` or `nft` text
 * refuses the characters that would change such a line (`ip -batch` cuts a line at `#`:
 * `alias x#y mtu 1400` ran as `alias x`), naming the field. And the value checks the state files
 * get (protocol/values.ts) are the ones requests get.
 */
import { describe, expect, it } from 'vitest';
import { PluginError } from '../../../src/errors.js';
import { State } from '../../../src/driver/state.js';
import { createNetwork } from '../../../src/driver/network.js';
import { createEndpoint } from '../../../src/driver/endpoint.js';
import { programExternalConnectivity } from '../../../src/driver/ports.js';
import { parseNetworkOptions } from '../../../src/protocol/options.js';
import { checkHostText } from '../../../src/rules/host-text.js';
import { checkMac } from '../../../src/rules/mac.js';
import { errorOf, hexId } from '../support.js';

const HOSTILE = ['"', '#', '\\', '\n', '\r', '\u0000', ' ', "'", ';', '{', '}', '\t'];
const G = 'com.docker.network.generic';
const NET = hexId(1);
const EP = hexId(2);

const netReq = (over: Record<string, unknown> = {}, generic: Record<string, unknown> = {}) => ({
  NetworkID: NET,
  Options: { 'com.docker.network.enable_ipv6': true, [G]: generic },
  IPv4Data: [{ Pool: '10.9.0.0/24', Gateway: '10.9.0.1/24' }],
  IPv6Data: [{ Pool: 'fd00:9::/64', Gateway: 'fd00:9::1/64' }],
  ...over,
});
const withNetwork = (): State => {
  const s = new State();
  s.apply(createNetwork(s, netReq(), 'absent', 'now').changes);
  return s;
};
const withEndpoint = (): State => {
  const s = withNetwork();
  s.apply(createEndpoint(s, { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.9.0.2/24' } }).changes);
  return s;
};
const noPorts = { listening: () => [], ephemeral: [49152, 60999] as const };

/** [field named in the error, the request made with a value carrying `c`]. */
const REQUESTS: [string, (c: string) => unknown][] = [
  ['option com.docker.network.bridge.name', (c) => parseNetworkOptions({ [G]: { 'com.docker.network.bridge.name': `mnt${c}x` } })],
  [
    'option com.docker.network.container_iface_prefix',
    (c) => parseNetworkOptions({ [G]: { 'com.docker.network.container_iface_prefix': `eth${c}` } }),
  ],
  ['option com.docker.network.host_ipv4', (c) => parseNetworkOptions({ [G]: { 'com.docker.network.host_ipv4': `203.0.113.7${c}` } })],
  ['option com.docker.network.host_ipv6', (c) => parseNetworkOptions({ [G]: { 'com.docker.network.host_ipv6': `fd00::7${c}` } })],
  [
    'option com.docker.network.bridge.host_binding_ipv4',
    (c) => parseNetworkOptions({ [G]: { 'com.docker.network.bridge.host_binding_ipv4': `${c}0.0.0.0` } }),
  ],
  ['option com.docker.network.driver.mtu', (c) => parseNetworkOptions({ [G]: { 'com.docker.network.driver.mtu': `14${c}00` } })],
  ['NetworkID', (c) => createNetwork(new State(), netReq({ NetworkID: `${hexId(1, 20)}${c}` }), 'absent', 'now')],
  ['IPv4Data[0].Pool', (c) => createNetwork(new State(), netReq({ IPv4Data: [{ Pool: `10.9.0.0/24${c}` }] }), 'absent', 'now')],
  [
    'IPv4Data[0].Gateway',
    (c) => createNetwork(new State(), netReq({ IPv4Data: [{ Pool: '10.9.0.0/24', Gateway: `10.9.0.1${c}/24` }] }), 'absent', 'now'),
  ],
  [
    'IPv6Data[0].Gateway',
    (c) => createNetwork(new State(), netReq({ IPv6Data: [{ Pool: 'fd00:9::/64', Gateway: `fd00:9::1/64${c}` }] }), 'absent', 'now'),
  ],
  ['EndpointID', (c) => createEndpoint(withNetwork(), { NetworkID: NET, EndpointID: `${c}${hexId(2, 20)}` })],
  [
    'Interface.Address',
    (c) => createEndpoint(withNetwork(), { NetworkID: NET, EndpointID: EP, Interface: { Address: `10.9.0.2/2${c}4` } }),
  ],
  [
    'Interface.AddressIPv6',
    (c) => createEndpoint(withNetwork(), { NetworkID: NET, EndpointID: EP, Interface: { AddressIPv6: `fd00:9::2${c}/64` } }),
  ],
  [
    'Interface.MacAddress',
    (c) => createEndpoint(withNetwork(), { NetworkID: NET, EndpointID: EP, Interface: { MacAddress: `02:42:0a:09:00:02${c}` } }),
  ],
  [
    'Options.com.docker.network.portmap[0].HostIP',
    (c) =>
      programExternalConnectivity(
        withEndpoint(),
        {
          NetworkID: NET,
          EndpointID: EP,
          Options: { 'com.docker.network.portmap': [{ Proto: 6, Port: 80, HostIP: `203.0.113.7${c}`, HostPort: 8080 }] },
        },
        noPorts,
      ),
  ],
];

describe('requests carrying a character that changes an ip or nft line are refused, naming the field', () => {
  for (const [field, make] of REQUESTS) {
    it(field, () => {
      for (const c of HOSTILE) {
        const e = errorOf(() => make(c));
        expect(e.code, JSON.stringify(c)).toBe('INVALID_REQUEST');
        expect(e.message.startsWith(`${field}: `), `${JSON.stringify(c)}: ${e.message}`).toBe(true);
      }
    });
  }

  it('the same requests without the character are accepted (the cases test the character, not something else)', () => {
    for (const [field, make] of REQUESTS) expect(() => make(''), field).not.toThrow();
  });

  it('a text option says which character and why', () => {
    expect(errorOf(() => parseNetworkOptions({ [G]: { 'com.docker.network.bridge.name': 'x#y' } })).message).toBe(
      'option com.docker.network.bridge.name: "x#y" contains "#", which would change the meaning of an ip or nft command (refused: " \' # \\ ; { }, blanks and control characters)',
    );
  });
});

describe('checkHostText', () => {
  it('refuses each such character and passes plain values', () => {
    for (const c of [...HOSTILE, '\u007f', '\u001b'])
      expect(() => checkHostText('f', `a${c}b`), JSON.stringify(c)).toThrow(/^f: .* contains/);
    for (const v of ['mn-0123456789ab', 'fd00::1', '10.0.0.0/8', '02:42:ac:11:00:02', 'br.lan_1-x']) expect(checkHostText('f', v)).toBe(v);
    expect(() => checkHostText('f', 7)).toThrow(/^f: 7 is not a string/);
  });
});

describe('checkMac (used at load) accepts exactly what CreateEndpoint accepts', () => {
  it('on a list of good and bad MACs', () => {
    const macs = [
      '02:42:0a:09:00:02',
      '02:42:0A:09:00:02',
      '03:42:0a:09:00:02',
      '02:42:0a:09:00',
      '02-42-0a-09-00-02',
      '02:42:0a:09:00:02#',
      ' 02:42:0a:09:00:02',
      '00:00:00:00:00:00',
      'ff:ff:ff:ff:ff:ff',
      'aa:bb:cc:dd:ee:fg',
    ];
    for (const mac of macs) {
      const atLoad = (() => {
        try {
          checkMac('m', mac);
          return true;
        } catch {
          return false;
        }
      })();
      const atRequest = (() => {
        try {
          createEndpoint(withNetwork(), { NetworkID: NET, EndpointID: EP, Interface: { MacAddress: mac } });
          return true;
        } catch (err) {
          expect((err as PluginError).message).toMatch(/^Interface\.MacAddress: /);
          return false;
        }
      })();
      expect(atLoad, mac).toBe(atRequest);
    }
  });
});
