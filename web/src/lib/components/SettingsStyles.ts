// Classes shared by the settings, audit, history and help pages (on top of fieldStyles.ts).

/** A small bordered button (secondary actions in lists and panels). */
export const btnSecondary =
  'inline-flex items-center justify-center gap-1.5 rounded-md border border-slate-700 bg-slate-800 px-2.5 py-1.5 text-xs font-medium text-slate-100 transition hover:border-slate-600 hover:bg-slate-700 focus-visible:outline-2 focus-visible:outline-sky-500 disabled:opacity-50';

/** The same, for something that destroys or locks out (revoke, delete, disable). */
export const btnDanger =
  'inline-flex items-center justify-center gap-1.5 rounded-md border border-slate-700 px-2.5 py-1.5 text-xs font-medium text-slate-300 transition hover:border-rose-500/50 hover:bg-rose-500/10 hover:text-rose-200 focus-visible:outline-2 focus-visible:outline-sky-500 disabled:opacity-50';

/** A primary (sky) button that is not a form's submit. */
export const btnPrimary =
  'inline-flex items-center justify-center gap-2 rounded-md bg-sky-600 px-4 py-2 text-sm font-medium text-white shadow-sm transition hover:bg-sky-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-sky-400 disabled:opacity-50';

/** Cancel in a dialog footer. */
export const btnGhost = 'rounded-md px-3 py-2 text-sm font-medium text-slate-300 transition hover:bg-slate-800 hover:text-slate-100';

/** A select in a form or a row. */
export const selectInput =
  'h-9 rounded-md border border-slate-700 bg-slate-950 px-2 py-1.5 text-sm text-slate-200 focus:border-sky-500 focus:ring-2 focus:ring-sky-500/30 focus:outline-none disabled:opacity-60';

/** Inline code in running text. */
export const inlineCode = 'rounded bg-slate-800 px-1 py-0.5 font-mono text-[0.85em] text-slate-300';

/** Role pills. */
export const roleTone: Record<string, string> = {
  admin: 'bg-violet-500/10 text-violet-200 ring-violet-500/30',
  operator: 'bg-sky-500/10 text-sky-200 ring-sky-500/30',
  viewer: 'bg-slate-800 text-slate-300 ring-slate-700',
};

/** The label above a filter of a list (History, the audit log). */
export const filterLabel = 'mb-1 block text-xs font-medium text-slate-400';
