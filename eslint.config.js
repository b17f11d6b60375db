// Lint is part of `npm test`: type-aware rules catch floating promises, which in a
// plugin that dockerd waits on turn into hung requests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers' import direction (README, Layout): each layer of src/ may import only the layers
// listed for it. Type-only imports are free (the contract types live in src/decision.ts and
// the records in src/driver/state.ts). test/unit/layers.test.ts also refuses import circles.
const LAYERS = ['rules', 'ip', 'policy', 'plan', 'protocol', 'driver', 'host', 'doctor', 'store', 'dns', 'http', 'admin', 'cli', 'cluster', 'multihost'];
const TOP = ['plugin', 'main', 'config', 'metrics', 'errors', 'logger', 'decision'];
const MAY_IMPORT = {
  // The value rules every layer shares (MTU bounds, VNI range, names and ids, MAC, address forms,
  // nft table name): one home each, so no layer keeps a copy that drifts (issue 21).
  rules: ['ip', 'errors'],
  ip: ['errors'],
  // Network policy (issue 25): documents, labels and what they compile to; pure.
  policy: ['rules', 'ip', 'errors'],
  plan: ['rules', 'ip', 'policy', 'errors'],
  protocol: ['rules', 'ip', 'plan', 'errors'],
  driver: ['rules', 'ip', 'policy', 'plan', 'protocol', 'errors'],
  host: ['rules', 'ip', 'plan', 'errors'],
  doctor: ['rules', 'ip', 'plan', 'driver', 'errors'],
  store: ['rules', 'ip', 'policy', 'plan', 'protocol', 'driver', 'errors'],
  dns: ['rules', 'ip', 'errors'],
  http: ['rules', 'protocol', 'errors'],
  admin: ['rules', 'policy', 'dns', 'errors', 'metrics', 'plugin', 'driver'],
  cli: ['rules', 'policy', 'admin', 'errors'],
  // The etcd side of multi-host networks (issue 17): addresses, keys and records; no host code.
  cluster: ['rules', 'ip', 'policy', 'errors'],
  // This host's part in the cluster: etcd (cluster) meets the kernel (plan, host) and the state (driver).
  multihost: ['rules', 'cluster', 'policy', 'plan', 'driver', 'host', 'dns', 'ip', 'errors'],
};
const layerRules = Object.entries(MAY_IMPORT).map(([layer, allowed]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    '@typescript-eslint/no-restricted-imports': ['error', {
      patterns: [
        ...LAYERS.filter((l) => l !== layer && !allowed.includes(l)).map((l) => ({ group: [`../${l}/*`], message: `src/${layer} may not import src/${l} (see the layers in eslint.config.js)`, allowTypeImports: true })),
        ...TOP.filter((t) => !allowed.includes(t)).map((t) => ({ group: [`../${t}.js`], message: `src/${layer} may not import src/${t}.ts (see the layers in eslint.config.js)`, allowTypeImports: true })),
      ],
    }],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'plugin/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  ...layerRules,
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly' } },
  },
);
