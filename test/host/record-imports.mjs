// Preloaded with `node --import` by start-lazy.test.ts: records the URL of every module the
// process resolves (ESM imports, including each npm package's entry point) into the file named
// by MNT_IMPORTS_FILE, one a line, so the test can tell which packages a plugin loaded.
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) register(import.meta.url);

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.MNT_IMPORTS_FILE, `${r.url}\n`);
  return r;
}
