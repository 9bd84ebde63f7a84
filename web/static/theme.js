// Runs before the page paints (a blocking script in <head>, from this origin: allowed by the
// Content-Security-Policy, unlike an inline one): put the chosen theme on <html> so the first
// frame is already light or dark. The choice is 'light', 'dark' or 'system' (the default,
// following the operating system). web/src/lib/theme.svelte.ts keeps it up to date after.
(function () {
  var choice = 'system';
  try {
    choice = localStorage.getItem('patchman-theme') || 'system';
  } catch (e) {}
  var light = choice === 'light' || (choice !== 'dark' && window.matchMedia && window.matchMedia('(prefers-color-scheme: light)').matches);
  document.documentElement.setAttribute('data-theme', light ? 'light' : 'dark');
})();
