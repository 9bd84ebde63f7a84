// Bundle the relay, dependencies included, into one file that runs on Node 20+ (the
// relay's box may not have Node 22): relay/dist/patchman-relay.cjs. Deploying the relay is
// copying that file. CommonJS because ssh2 and ws are CommonJS and require Node built-ins.
import { build } from 'esbuild';

await build({
  entryPoints: ['relay/main.ts'],
  outfile: 'relay/dist/patchman-relay.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // optional native speed-ups that ssh2 and ws load inside try/catch
  external: ['cpu-features', 'bufferutil', 'utf-8-validate', '*.node'],
  sourcemap: true,
  logLevel: 'warning',
});
console.log('built relay/dist/patchman-relay.cjs');
