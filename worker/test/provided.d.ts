// What globalSetup (e2e/receiver-global-setup.ts) provides to the worker tests.
declare module 'vitest' {
  export interface ProvidedContext {
    /** A real HTTP receiver on loopback (e2e/http-receiver.ts). */
    receiverUrl: string;
  }
}
export {};
