/**
 * The event backend's status detail text: what `status().detail` says in each phase, and what the
 * `unavailable` errors of writes, history reads and `sync()` quote as the reason.
 */
import type { Status } from '../../hat/eventer/common.js';
import type { Phase } from './phase.js';

/** What the detail text needs to know of the phase. */
export interface PhaseView {
  readonly current: Phase;
  readonly recoveryProgress: number;
  readonly serverStatus: Status | null;
  readonly lastError: string;
}

/** What the detail text needs to know of the revision completion (`revision-completion.ts`). */
export interface CompletionView {
  readonly pending: boolean;
  readonly size: number;
}

export function statusDetail(p: PhaseView, completion: CompletionView): string {
  switch (p.current) {
    case 'connecting':
      return 'connecting to Hat';
    case 'recovering':
      return `recovering from Hat (${p.recoveryProgress} events so far)`;
    case 'standby':
      return `connected, Hat server status is ${p.serverStatus ?? 'unknown'}`;
    case 'online':
      return completion.pending
        ? `online, completing history (revisions of ${completion.size} models not exact yet)`
        : 'online';
    case 'offline':
      return `Hat unreachable (${p.lastError || 'no connection'})`;
    case 'closed':
      return 'closed';
  }
}
