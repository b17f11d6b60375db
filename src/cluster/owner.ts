/**
 * Whose a claim or an endpoint record is (issue 22, findings 5 and 15): ids are identity, names
 * are labels. A record that carries a node id is its writer's, whatever name it carries (a host
 * renamed still owns it, and moves it to its new name); a record without one was written by a
 * mynet before ids and is held by name, as then (the upgrade). A host of the same name with
 * another id owns nothing of the other's: no `--ip` of its addresses, no release, no withdrawal.
 */
export interface NodeSelf {
  readonly name: string;
  /** Absent only where no id exists (unit fakes of a mynet before ids). */
  readonly id?: string;
}

export interface Owned {
  readonly node: string;
  readonly nodeId?: string;
}

export function ownedBy(r: Owned, self: NodeSelf): boolean {
  if (r.nodeId !== undefined && self.id !== undefined) return r.nodeId === self.id;
  return r.node === self.name;
}

/** Ours, but not as this host writes it now: under an old name, or without the id. Rewritten by convergence. */
export function staleOwn(r: Owned, self: NodeSelf): boolean {
  return ownedBy(r, self) && (r.node !== self.name || (self.id !== undefined && r.nodeId !== self.id));
}

/** How a record's holder is named in messages: the name, and the id when there is one. */
export const holderOf = (r: Owned): string => (r.nodeId ? `${r.node} (id ${r.nodeId.slice(0, 8)})` : r.node);
