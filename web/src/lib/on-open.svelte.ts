// Dialogs start afresh each time they open: an empty form, or what they show fixed as of
// that moment (a scan landing meanwhile must not change it under the reader's eyes).
import { untrack } from 'svelte';

/** Runs `reset` each time `isOpen()` turns true. Call while a component initialises. */
export function onOpen(isOpen: () => boolean, reset: () => void) {
  let wasOpen = false;
  $effect(() => {
    const open = isOpen();
    if (open && !wasOpen) untrack(reset);
    wasOpen = open;
  });
}
