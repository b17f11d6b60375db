import { describe, expect, it } from 'vitest';
import {
  BRIDGE_PREFIX,
  MYNET_GROUP,
  containerVethName,
  defaultBridgeName,
  endpointAlias,
  hostVethName,
  networkAlias,
  short,
} from '../../../src/plan/link-names.js';
import { checkId, checkIfName } from '../../../src/rules/names.js';

const NID = '8f19a07e80feaabe8d677ef1a704b65e57a1a011db75e3b488333bfb5776e9e6';
const EID = 'eaa9b94eff48d101a249b461e493f6a08e25aead22365c6a3a8dab89d7a9574e';

describe('names', () => {
  it('derives link names that fit in 15 bytes', () => {
    expect(defaultBridgeName(NID)).toBe('mn-8f19a07e80fe');
    expect(hostVethName(EID)).toBe('mnheaa9b94eff48');
    expect(containerVethName(EID)).toBe('mnceaa9b94eff48');
    for (const n of [defaultBridgeName(NID), hostVethName(EID), containerVethName(EID)]) {
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(15);
      expect(() => checkIfName('x', n)).not.toThrow();
    }
    expect(defaultBridgeName(NID).startsWith(BRIDGE_PREFIX)).toBe(true);
    expect(short(NID)).toBe('8f19a07e80fe');
  });

  it('aliases name the network and endpoint', () => {
    expect(networkAlias(NID)).toBe('mynet net:8f19a07e80fe');
    expect(endpointAlias(NID, EID)).toBe('mynet net:8f19a07e80fe ep:eaa9b94eff48');
  });

  it('the netdev group is "mn"', () => {
    expect(MYNET_GROUP).toBe(0x6d6e);
  });

  it('checkId accepts 12..64 lowercase hex and refuses the rest, naming the field', () => {
    expect(checkId('NetworkID', NID)).toBe(NID);
    expect(checkId('NetworkID', 'abcdef012345')).toBe('abcdef012345');
    for (const bad of ['', 'abc', 'ABCDEF012345', 'abcdef01234g', `${NID}0`, ' abcdef012345', '../../etc/passwd', 12, null, undefined]) {
      expect(() => checkId('EndpointID', bad), String(bad)).toThrow(/^EndpointID: must be a hex id/);
    }
  });
});
