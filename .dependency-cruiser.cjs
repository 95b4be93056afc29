// The import rule, checked by dependency-cruiser in `npm run lint` (see ARCHITECTURE.md).
// Layers, top to bottom: the composition root (src/app, compose, server, http-server,
// shutdown) → routers/ → services/<domain>/ → the kernel (the rest of src/). middleware/
// depends only on the kernel and on what the app gives it. A domain folder is entered only
// through its index.ts; tests may reach single units.
/** @type {import('dependency-cruiser').IConfiguration} */

const ROOT = '^src/(app|compose|server|http-server|shutdown)\\.ts$';
const KERNEL = '^src/(?!(app|compose|server|http-server|shutdown)\\.ts$)';

module.exports = {
  forbidden: [
    {
      name: 'kernel-imports-only-kernel',
      comment: 'The kernel (src/ without the composition root) imports only itself and packages.',
      severity: 'error',
      from: { path: KERNEL },
      to: { path: ['^(routers|services|middleware|test|bench|scripts)/', ROOT] },
    },
    {
      name: 'middleware-imports-only-kernel',
      comment: 'Middleware gets services through its options, never by import.',
      severity: 'error',
      from: { path: '^middleware/' },
      to: { path: ['^(routers|services|test|bench|scripts)/', ROOT] },
    },
    {
      name: 'services-import-down',
      comment: 'Services import other domains and the kernel, never routers or middleware.',
      severity: 'error',
      from: { path: '^services/' },
      to: { path: ['^(routers|middleware|test|bench|scripts)/', ROOT] },
    },
    {
      name: 'routers-import-down',
      comment: 'Routers import services, middleware and the kernel, never the composition root.',
      severity: 'error',
      from: { path: '^routers/' },
      to: { path: ['^(test|bench|scripts)/', ROOT] },
    },
    {
      name: 'domain-entered-through-index',
      comment: 'Another folder reaches a service domain only through its index.ts.',
      severity: 'error',
      from: { path: '^(src|routers|middleware|bench|scripts)/' },
      to: { path: '^services/[^/]+/', pathNot: '^services/[^/]+/index\\.ts$' },
    },
    {
      name: 'domain-to-domain-through-index',
      comment: 'One domain reaches another only through its index.ts.',
      severity: 'error',
      from: { path: '^services/([^/]+)/' },
      to: { path: '^services/[^/]+/', pathNot: ['^services/$1/', '^services/[^/]+/index\\.ts$'] },
    },
    {
      name: 'no-runtime-cycles',
      comment: 'Modules that load each other at run time (type-only imports are erased).',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
