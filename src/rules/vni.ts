/** VXLAN ids: what the kernel takes, and the part of it mynet gives out. */
import { invalid } from '../errors.js';

/** A VXLAN id is 24 bits; 0 is not used. */
export const VXLAN_ID_MIN = 1;
export const VXLAN_ID_MAX = 16_777_215;
/** mynet gives out 4096 and up: below is left to hand-made devices and Docker's overlay (which starts at 4096 too). */
export const VNI_MIN = 4096;
export const VNI_MAX = VXLAN_ID_MAX;

/**
 * A VNI this host writes (from `-o mynet.vni`, or derived): mynet's range. A recorded one
 * (journal, etcd) is read with the same bounds: every writer of every version stayed in them.
 */
export function checkVni(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < VNI_MIN || v > VNI_MAX) {
    throw invalid(
      field,
      `${JSON.stringify(v)?.slice(0, 40)} is not a VXLAN id from ${VNI_MIN} to ${VNI_MAX} (mynet's range: below ${VNI_MIN} is left to other tools)`,
    );
  }
  return v;
}
