// The theme in force: the stored choice, applied to <html data-theme>, and followed live when
// the choice is 'system' and the operating system switches.
import { nextTheme, parseChoice, resolveTheme, THEME_KEY, type ThemeChoice } from './theme.ts';

class Theme {
  choice = $state<ThemeChoice>('system');
  systemLight = $state(false);
  readonly shown = $derived(resolveTheme(this.choice, this.systemLight));

  /** Read the stored choice and follow the system (once, from the layout). */
  start(): () => void {
    try {
      this.choice = parseChoice(localStorage.getItem(THEME_KEY));
    } catch {
      // storage blocked: the system's choice it is
    }
    const media = matchMedia('(prefers-color-scheme: light)');
    this.systemLight = media.matches;
    const onChange = (e: MediaQueryListEvent) => (this.systemLight = e.matches);
    media.addEventListener('change', onChange);
    return () => media.removeEventListener('change', onChange);
  }

  set(choice: ThemeChoice) {
    this.choice = choice;
    try {
      if (choice === 'system') localStorage.removeItem(THEME_KEY);
      else localStorage.setItem(THEME_KEY, choice);
    } catch {
      // not kept across reloads, then
    }
  }

  toggle() {
    this.set(nextTheme(this.choice));
  }

  /** Put the shown theme on <html> (an effect in the layout calls this). */
  apply() {
    document.documentElement.setAttribute('data-theme', this.shown);
  }
}

export const theme = new Theme();
