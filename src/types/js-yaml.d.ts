/** The part of js-yaml 4 mynet uses (policy files, src/policy/document.ts); the package ships no types. */
declare module 'js-yaml' {
  export const FAILSAFE_SCHEMA: unknown;
  export function loadAll(text: string, iterator?: undefined, options?: { schema?: unknown; filename?: string }): unknown[];
}
