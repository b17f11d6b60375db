/**
 * Endpoint labels for network policy (issue 25): `mynet.label.<key>=<value>` driver options on an
 * endpoint, the `select`/`from` maps of a policy, and the labels an endpoint record carries to
 * other hosts are all checked here. The characters are those of a Kubernetes label's name part,
 * so a key or value is safe in a log line, a JSON record and an nft comment as it is.
 */
import { invalid } from '../errors.js';

/** A label key or value: 1-63 of A-Z a-z 0-9 . _ - (a value may also be empty). */
const LABEL_TEXT = /^[A-Za-z0-9._-]{1,63}$/;
export const LABEL_RULE = '1-63 of A-Z a-z 0-9 . _ -';
/** An endpoint carries at most this many labels, a selector matches on at most this many. */
export const LABELS_MAX = 32;
/** The endpoint driver option prefix: `--network name=blue,driver-opt=mynet.label.app=web`. */
export const LABEL_OPTION = 'mynet.label.';

export type Labels = Readonly<Record<string, string>>;

const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 80) ?? String(v);

export function checkLabelKey(field: string, k: unknown): string {
  if (typeof k !== 'string' || !LABEL_TEXT.test(k)) throw invalid(field, `label key ${show(k)} is not ${LABEL_RULE}`);
  return k;
}

export function checkLabelValue(field: string, v: unknown): string {
  if (typeof v !== 'string' || (v !== '' && !LABEL_TEXT.test(v)))
    throw invalid(field, `label value ${show(v)} is not ${LABEL_RULE} (or empty)`);
  return v;
}

/** A whole map of labels (a record's, a selector's): an object of at most LABELS_MAX checked pairs. */
export function checkLabels(field: string, v: unknown): Labels {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'must be an object of label key to value');
  const entries = Object.entries(v);
  if (entries.length > LABELS_MAX) throw invalid(field, `has ${entries.length} labels, at most ${LABELS_MAX}`);
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    checkLabelKey(`${field}.${k}`, k);
    out[k] = checkLabelValue(`${field}.${k}`, val);
  }
  return out;
}

/**
 * The labels in an endpoint's driver options (CreateEndpoint's Options, where dockerd puts each
 * `driver-opt` as a top-level string key). Other keys are not labels and are left to their readers.
 */
export function labelsFromOptions(options: Readonly<Record<string, unknown>> | null | undefined): Labels {
  const out: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of Object.entries(options ?? {})) {
    if (!k.startsWith(LABEL_OPTION)) continue;
    const field = `Options.${k.slice(0, 100)}`;
    if (++n > LABELS_MAX) throw invalid('Options', `more than ${LABELS_MAX} ${LABEL_OPTION}* labels`);
    const key = checkLabelKey(field, k.slice(LABEL_OPTION.length));
    out[key] = checkLabelValue(field, v);
  }
  return out;
}

/** Every key of `selector` is on `labels` with the same value (an empty selector matches all). */
export const matches = (selector: Labels, labels: Labels): boolean =>
  Object.entries(selector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);

/** What a container's Docker labels give an endpoint: the labels that check, and why each other one is ignored. */
export interface ContainerLabels {
  readonly labels: Labels;
  /** One line per ignored `mynet.label.*` label (at most LABELS_MAX + 1 lines: the count of the rest last). */
  readonly refused: readonly string[];
}

/**
 * The `mynet.label.*` labels of a container (Docker's `Config.Labels`, read from the Engine API:
 * a stranger's input), with the rules of driver options. Unlike a driver option, a bad label is
 * not refused to anyone (the container already runs): it is ignored and named in `refused`,
 * and the others still count. At most LABELS_MAX are kept (by key order), so a container with
 * thousands of labels costs no more than one with 32.
 */
export function labelsFromContainer(dockerLabels: unknown): ContainerLabels {
  const out: Record<string, string> = {};
  const refused: string[] = [];
  if (typeof dockerLabels !== 'object' || dockerLabels === null || Array.isArray(dockerLabels)) return { labels: out, refused };
  const ours = Object.keys(dockerLabels)
    .filter((k) => k.startsWith(LABEL_OPTION))
    .sort();
  let extra = 0;
  for (const k of ours) {
    const field = `Config.Labels.${k.slice(0, 100)}`;
    if (Object.keys(out).length >= LABELS_MAX) {
      extra++;
      continue;
    }
    try {
      const key = checkLabelKey(field, k.slice(LABEL_OPTION.length));
      out[key] = checkLabelValue(field, (dockerLabels as Record<string, unknown>)[k]);
    } catch (err) {
      // Ignored, not thrown: one bad label must not take the container's other labels with it.
      if (refused.length < LABELS_MAX) refused.push((err as Error).message);
      else extra++;
    }
  }
  if (extra > 0) refused.push(`${extra} more ${LABEL_OPTION}* labels ignored (an endpoint carries at most ${LABELS_MAX})`);
  return { labels: out, refused };
}

/**
 * An endpoint's labels for policy: its driver-opt labels and its container's labels. A driver
 * option wins a clash, as Docker lets a per-network option override a container-wide setting:
 * it is the more specific choice. Driver-opt labels alone are returned as they are.
 */
export function endpointLabels(e: { readonly labels?: Labels; readonly containerLabels?: Labels }): Labels {
  if (!e.containerLabels) return e.labels ?? {};
  return { ...e.containerLabels, ...e.labels };
}

/**
 * The container labels an endpoint keeps beside its driver-opt labels: those of another key (a
 * driver option wins a clash), by key order, while the two together stay within LABELS_MAX
 * (the bound every host's record check holds an endpoint to). `cut`: the keys left out for room.
 */
export function fitContainerLabels(driverOpt: Labels | undefined, container: Labels): { labels: Labels; cut: string[] } {
  const own = driverOpt ?? {};
  const room = LABELS_MAX - Object.keys(own).length;
  const labels: Record<string, string> = {};
  const cut: string[] = [];
  for (const k of Object.keys(container).sort()) {
    if (Object.hasOwn(own, k)) continue;
    if (Object.keys(labels).length < room) labels[k] = container[k] as string;
    else cut.push(k);
  }
  return { labels, cut };
}
