// globalSetup for the worker tests: one real HTTP receiver on loopback for the whole run;
// tests inside workerd reach it at inject('receiverUrl').
import type { TestProject } from 'vitest/node';
import { startReceiver, type Receiver } from './http-receiver.ts';

let receiver: Receiver | undefined;

export async function setup(project: TestProject) {
  receiver = await startReceiver();
  project.provide('receiverUrl', receiver.url);
}

export async function teardown() {
  await receiver?.close();
}

declare module 'vitest' {
  export interface ProvidedContext {
    receiverUrl: string;
  }
}
