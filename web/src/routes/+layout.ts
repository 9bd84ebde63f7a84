// A pure single-page app: no server rendering, nothing prerendered; the Worker serves the
// adapter-static fallback (index.html) for every path that is not a file.
export const ssr = false;
export const prerender = false;
