import { describe, expect, it } from 'vitest';
import { initialChunkSplitting, initialNodeFiles, staticClosure, withModulePreloads } from './initial-chunk.ts';

const graph: Record<string, string[]> = {
  layout: ['live', 'icon'],
  page: ['hosts-panel'],
  'hosts-panel': ['icon', 'row'],
  row: [],
  live: [],
  icon: [],
  other: ['row'],
};
const info = (id: string) => (id in graph ? { importedIds: graph[id] } : null);

describe('the initial chunk', () => {
  it('holds what the layout and the dashboard import statically, and nothing else', () => {
    expect([...staticClosure(['layout', 'page'], info)].sort()).toEqual(['hosts-panel', 'icon', 'layout', 'live', 'page', 'row']);
    const group = initialChunkSplitting(['layout', 'page']).groups[0];
    const ctx = { getModuleInfo: info };
    expect(group.name('row', ctx)).toBe('initial');
    expect(group.name('other', ctx)).toBeNull(); // another route: its own chunk, on demand
  });

  it('preloads the route nodes that are only a re-export from it', () => {
    const manifest = {
      _abc: { file: '_app/immutable/chunks/abc.js', name: 'initial' },
      _lazy: { file: '_app/immutable/chunks/lazy.js', name: 'Settings', imports: ['_abc'] },
      'nodes/0.js': { file: '_app/immutable/nodes/0.x.js', src: '.svelte-kit/generated/nodes/0.js', isEntry: true, imports: ['_abc'] },
      'nodes/2.js': { file: '_app/immutable/nodes/2.y.js', src: '.svelte-kit/generated/nodes/2.js', isEntry: true, imports: ['_abc'] },
      'nodes/5.js': { file: '_app/immutable/nodes/5.z.js', src: '.svelte-kit/generated/nodes/5.js', isEntry: true, imports: ['_abc', '_lazy'] },
    };
    const files = initialNodeFiles(manifest);
    expect(files).toEqual(['_app/immutable/nodes/0.x.js', '_app/immutable/nodes/2.y.js']);
    const html = '<head>\n\t\t<link href="/_app/immutable/nodes/0.x.js" rel="modulepreload">\n\t\t<link href="/a.css" rel="stylesheet">\n</head>';
    const out = withModulePreloads(html, files);
    expect(out.match(/nodes\/0\.x\.js/g)).toHaveLength(1); // kept, not doubled
    expect(out).toContain('<link href="/_app/immutable/nodes/2.y.js" rel="modulepreload">');
    expect(out.indexOf('nodes/2.y.js')).toBeLessThan(out.indexOf('a.css'));
    expect(initialNodeFiles({})).toEqual([]);
  });
});
