/** Default address pools (MYNET_DEFAULT_POOLS): where automatic IPAM pools are cut from. */
import { invalid } from '../errors.js';
import { type Cidr, parseCidr } from './cidr.js';

/** A base prefix split into subnets of `size` (MYNET_DEFAULT_POOLS "10.200.0.0/16/24"). */
export interface DefaultPool {
  readonly base: Cidr;
  readonly size: number;
}

/** MYNET_DEFAULT_POOLS: "base/len/size" items separated by commas. */
export function parseDefaultPools(text: string): DefaultPool[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((item) => {
      const m = /^(.+\/\d{1,3})\/(\d{1,3})$/.exec(item);
      const base = m ? parseCidr(m[1] as string) : undefined;
      const size = m ? Number(m[2]) : NaN;
      if (!base?.ok || !(size >= base.cidr.prefix) || size > (base.cidr.family === 4 ? 32 : 128)) {
        throw invalid('MYNET_DEFAULT_POOLS', `"${item}" is not base/len/size (e.g. 10.200.0.0/16/24, size >= len)`);
      }
      return { base: base.cidr, size };
    });
}
