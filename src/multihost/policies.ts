/**
 * A cluster network's policies as etcd holds them (issue 25), followed like the other record
 * kinds (list, watch, re-list after a break: cluster/follower.ts). Each value is checked in full
 * (cluster/policy-records.ts); one that does not check is logged once per value, listed by the
 * doctor and `mynet status` as refused, and never reaches the kernel. What the table must
 * enforce (the policies and the other hosts' endpoints) is handed on only when it changed.
 */
import type { Logger } from 'pino';
import type { PrefixFollower } from '../cluster/follower.js';
import { readPolicyRecord } from '../cluster/policy-records.js';
import type { ClusterPolicyInput } from '../driver/state.js';
import type { Policy } from '../policy/document.js';

interface ReadPolicy {
  readonly value: string;
  readonly result: ReturnType<typeof readPolicyRecord>;
}

export class PolicyFollower {
  private follower: PrefixFollower | undefined;
  /** Keys whose value does not check, with why. */
  readonly refused = new Map<string, string>();
  /** The policies that check, by name, as last read. */
  private checked: readonly Policy[] = [];
  /** Each key's value as last checked, with the check's result. */
  private read = new Map<string, ReadPolicy>();
  /** The input last handed on (as JSON): an unchanged one is not handed on again. */
  private last: string | undefined;
  /**
   * Whether etcd's copy has been listed once. Before that the copy is empty, not "no policies":
   * handed on, it would remove the network's policy from the table until the list came (an
   * endpoint change of the plane asks for a reading as soon as the plane starts).
   */
  private listed = false;

  constructor(
    private readonly cluster: string,
    private readonly log: Logger,
    private readonly remote: () => ClusterPolicyInput['remote'],
    private readonly onPolicy?: (input: ClusterPolicyInput) => void,
  ) {}

  start(f: PrefixFollower): void {
    this.follower = f;
  }

  stop(): Promise<void> | undefined {
    return this.follower?.stop();
  }

  get synced(): boolean {
    return this.follower?.current === 'synced';
  }

  /** The policies that check, sorted by name. */
  get current(): readonly Policy[] {
    return this.checked;
  }

  /** etcd's news for the copy (its first list included): from here on, the copy is etcd's. */
  fromEtcd(): void {
    this.listed = true;
    this.changed();
  }

  /** The followed copy or the remote endpoints changed: read the copy again and hand on what changed. */
  changed(): void {
    const f = this.follower;
    if (!f || !this.listed) return;
    const good: Policy[] = [];
    const refused = new Map<string, string>();
    // Each value is checked once: a remote endpoint's change (every batch of the plane) reads the
    // copy again, and up to 1024 policies of 64 KiB each are not parsed again for it.
    const seen = new Map<string, ReadPolicy>();
    for (const it of f.mirror.entries()) {
      const before = this.read.get(it.key);
      const r = before?.value === it.value ? before : { value: it.value, result: readPolicyRecord(it.key, it.value) };
      seen.set(it.key, r);
      if (r.result.ok) good.push(r.result.record);
      else refused.set(it.key, r.result.problem);
    }
    this.read = seen;
    for (const [key, problem] of refused)
      if (this.refused.get(key) !== problem)
        this.log.warn({ cluster: this.cluster, key, problem }, 'cluster: a policy in etcd does not check and is ignored');
    this.refused.clear();
    for (const [k, v] of refused) this.refused.set(k, v);
    this.checked = good.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const input: ClusterPolicyInput = { policies: this.checked, remote: this.remote() };
    const text = JSON.stringify(input);
    if (text === this.last) return;
    this.last = text;
    this.onPolicy?.(input);
  }
}
