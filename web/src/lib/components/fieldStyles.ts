// Classes shared by the form fields (the host dialogs, the settings page).

export const fieldInput =
  'block w-full rounded-md border bg-slate-950 px-3 py-2 text-sm text-slate-100 placeholder:text-slate-600 transition focus:outline-none focus:ring-2';
export const fieldOk = 'border-slate-700 focus:border-sky-500 focus:ring-sky-500/30';
export const fieldBad = 'border-rose-500/70 focus:border-rose-500 focus:ring-rose-500/30';
export const fieldLabel = 'mb-1 block text-xs font-medium text-slate-300';
