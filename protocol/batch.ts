// Batch frames (protocol feature `batch`, protocol/relay.ts): messages already in JSON,
// packed in order into as few frames as the limits allow. Both ends send through this: the
// Worker its requests, the relay its answers.
import { BATCH_MAX_CHARS, BATCH_MAX_MESSAGES } from './relay.ts';

const HEAD = '{"type":"batch","messages":[';
const TAIL = ']}';

/** The frames for these messages (each one JSON object's text), in order. Consecutive messages
 * share a frame up to BATCH_MAX_CHARS and BATCH_MAX_MESSAGES; a message alone in its frame is
 * sent as itself, as a peer without the feature would send it. */
export function packFrames(messages: readonly string[]): string[] {
  const frames: string[] = [];
  let group: string[] = [];
  let chars = HEAD.length + TAIL.length;
  const close = () => {
    if (group.length === 1) frames.push(group[0]);
    else if (group.length > 1) frames.push(HEAD + group.join(',') + TAIL);
    group = [];
    chars = HEAD.length + TAIL.length;
  };
  for (const m of messages) {
    if (group.length > 0 && (chars + m.length + 1 > BATCH_MAX_CHARS || group.length >= BATCH_MAX_MESSAGES)) close();
    group.push(m);
    chars += m.length + 1;
  }
  close();
  return frames;
}
