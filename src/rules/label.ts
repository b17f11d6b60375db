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
