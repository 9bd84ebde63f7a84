// The light/dark choice: 'system' (follow the operating system, the default), 'light' or
// 'dark', kept in localStorage under the same key static/theme.js reads before the first paint.
export type ThemeChoice = 'system' | 'light' | 'dark';
export const THEME_CHOICES: readonly ThemeChoice[] = ['system', 'light', 'dark'];
export const THEME_KEY = 'patchman-theme';

/** The theme a choice shows, given whether the system prefers light. */
export function resolveTheme(choice: ThemeChoice, systemPrefersLight: boolean): 'light' | 'dark' {
  return choice === 'system' ? (systemPrefersLight ? 'light' : 'dark') : choice;
}

/** The next choice of the toggle button: system → light → dark → system. */
export function nextTheme(choice: ThemeChoice): ThemeChoice {
  return THEME_CHOICES[(THEME_CHOICES.indexOf(choice) + 1) % THEME_CHOICES.length];
}

export function parseChoice(stored: string | null): ThemeChoice {
  return (THEME_CHOICES as readonly string[]).includes(stored ?? '') ? (stored as ThemeChoice) : 'system';
}
