/** Reported to the Worker in `hello`; bump with package.json. */
export const RELAY_VERSION = '0.1.0';
