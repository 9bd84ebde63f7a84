// A window onto a long list in the page's own scroll: only the items within a screen or so
// of the viewport are rendered, with spacers above and below standing in for the rest, so
// 1,000 hosts cost what 40 do. Item heights are per kind (a row, a group heading), measured
// from rendered items; a row that wraps differently only shifts the spacers a little.
import { untrack } from 'svelte';

/** Below this many items everything is rendered (a small fleet keeps plain DOM: find in page, print). */
export const VIRTUAL_MIN_ITEMS = 150;
/** Extra pixels rendered above and below the viewport, so a fast scroll does not show gaps. */
const OVERSCAN_PX = 600;

export class VirtualRows {
  /** Where the first item's top is, relative to the viewport's top (negative once scrolled past). */
  #top = $state(0);
  #height = $state(typeof window === 'undefined' ? 800 : window.innerHeight);
  /** False until the list's position has been measured once: until then one item is
   * rendered, not a screenful guessed from the top of the page (the list usually starts
   * far below it, and rows that go again at once made the first render slower). */
  #measured = $state(false);
  #frame = 0;
  #anchor: HTMLElement | null = null;

  /** Prefix sums: offsets[i] is item i's top, offsets[n] the total height. */
  static offsets(count: number, heightOf: (i: number) => number): number[] {
    const out = new Array<number>(count + 1);
    out[0] = 0;
    for (let i = 0; i < count; i++) out[i + 1] = out[i] + heightOf(i);
    return out;
  }

  /** The items to render, [start, end), and the spacers' heights. */
  range(offsets: number[]): { start: number; end: number; before: number; after: number } {
    const n = offsets.length - 1;
    if (n <= VIRTUAL_MIN_ITEMS) return { start: 0, end: n, before: 0, after: 0 };
    if (!this.#measured) return { start: 0, end: 1, before: 0, after: offsets[n] - offsets[1] };
    const from = -this.#top - OVERSCAN_PX;
    const to = -this.#top + this.#height + OVERSCAN_PX;
    const start = Math.max(0, firstAbove(offsets, from) - 1);
    const end = Math.min(n, Math.max(start + 1, firstAbove(offsets, to)));
    return { start, end, before: offsets[start], after: offsets[n] - offsets[end] };
  }

  /** Follow the page's scroll and size from the element at the list's top (the first spacer). */
  attach = (anchor: HTMLElement) => {
    this.#anchor = anchor;
    const onChange = () => {
      if (this.#frame) return;
      this.#frame = requestAnimationFrame(() => {
        this.#frame = 0;
        this.#measure();
      });
    };
    untrack(() => this.#measure());
    window.addEventListener('scroll', onChange, { passive: true });
    window.addEventListener('resize', onChange);
    // content above the list (a progress bar, a banner) moves it without a scroll
    const resized = new ResizeObserver(onChange);
    resized.observe(document.body);
    return () => {
      resized.disconnect();
      window.removeEventListener('scroll', onChange);
      window.removeEventListener('resize', onChange);
      if (this.#frame) cancelAnimationFrame(this.#frame);
      this.#frame = 0;
      this.#anchor = null;
    };
  };

  #measure() {
    if (!this.#anchor) return;
    const top = Math.round(this.#anchor.getBoundingClientRect().top);
    // only changes that move the window by a useful amount cause a re-render
    if (Math.abs(top - this.#top) >= 8) this.#top = top;
    if (window.innerHeight !== this.#height) this.#height = window.innerHeight;
    if (!this.#measured) this.#measured = true;
  }
}

/** The first index whose top is past y (binary search over the prefix sums). */
function firstAbove(offsets: number[], y: number): number {
  let lo = 0;
  let hi = offsets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (offsets[mid] <= y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The height of the rendered elements matching `selector` inside `root` (their median), or null. */
export function measuredHeight(root: HTMLElement | undefined, selector: string): number | null {
  if (!root) return null;
  const heights = [...root.querySelectorAll<HTMLElement>(selector)].slice(0, 25).map((el) => el.offsetHeight).filter((h) => h > 0);
  if (heights.length === 0) return null;
  heights.sort((a, b) => a - b);
  return heights[heights.length >> 1];
}
