// Small transient notifications (bottom-right), e.g. a scan that failed.
export type ToastKind = 'info' | 'success' | 'error';
export interface Toast {
  id: number;
  kind: ToastKind;
  message: string;
}

let next = 1;

class Toasts {
  items = $state<Toast[]>([]);

  push(kind: ToastKind, message: string, ms = kind === 'error' ? 8000 : 4000) {
    const id = next++;
    this.items.push({ id, kind, message });
    setTimeout(() => this.dismiss(id), ms);
    return id;
  }

  dismiss(id: number) {
    const i = this.items.findIndex((t) => t.id === id);
    if (i >= 0) this.items.splice(i, 1);
  }
}

export const toasts = new Toasts();
