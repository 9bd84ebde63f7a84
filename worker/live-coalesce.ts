// A broadcast carries each job, host and relay once: its last state, where that came. Job
// and host events are whole rows, so an earlier one in the same broadcast says nothing the
// later one does not (a docker scan queued and dispatched in the same batch; a host updated
// twice). During "Scan all" of 1,000 hosts this was a third of the job events every open
// dashboard parsed, validated and applied (bench:scan-all). A job's output is never merged.
import type { LiveEvent } from '../protocol/api.ts';

/** What an event is the state of (a deleted host is its host's last state), or null. */
function subjectOf(event: LiveEvent): string | null {
  switch (event.type) {
    case 'job':
      return `job:${event.job.id}`;
    case 'host':
      return `host:${event.host.id}`;
    case 'host.deleted':
      return `host:${event.id}`;
    case 'relay':
      return `relay:${event.relay.id}`;
    case 'job.output':
      return null;
  }
}

/** The events with every earlier state of the same job, host or relay left out; the order of
 * what stays is kept. */
export function coalesceEvents(events: LiveEvent[]): LiveEvent[] {
  if (events.length < 2) return events;
  const lastAt = new Map<string, number>();
  let keyed = 0;
  events.forEach((event, i) => {
    const subject = subjectOf(event);
    if (subject === null) return;
    keyed++;
    lastAt.set(subject, i);
  });
  if (lastAt.size === keyed) return events;
  return events.filter((event, i) => {
    const subject = subjectOf(event);
    return subject === null || lastAt.get(subject) === i;
  });
}
