/**
 * Where events from Hat enter the state, exactly once and in order.
 *
 * Notifications are applied at once unless the intake is held: during recovery (catch-up pages are
 * applied directly; notifications wait) and while a register request is in flight (Hat notifies a
 * registering subscriber *before* its MsgRegisterRes, so our own events must wait for the response
 * to be recognised as ours by their event ids). On release the held events and our registered
 * events are merged, sorted by event id and applied; duplicates are skipped by the state.
 *
 * Several register requests may be in flight on one connection (the register window): each holds
 * the intake with {@link holdRegister}. When one is answered (in send order) while later ones are
 * still out, only the held events up to its last event id are applied: Hat handles a connection's
 * requests one after another, so everything up to there has been notified, while later events may
 * be a later request's own, not yet recognisable as ours.
 */
import type { ChangeOrigin } from '../../backend/types.js';
import type { Event } from '../../hat/eventer/common.js';
import { compareRefs, type EventRef, refKey, refOf } from './event-ref.js';
import type { EventOutcome, KnownModel } from './state.js';

export type ApplyFn = (
  events: Event[],
  originOf: (ref: EventRef) => ChangeOrigin,
  knownOf: (ref: EventRef) => KnownModel | undefined,
) => readonly EventOutcome[];

export class EventIntake {
  private deferred: Event[] = [];
  private holds = 0;
  /** Register requests in flight (their holds). */
  private registers = 0;
  private readonly localKeys = new Set<string>();
  private readonly known = new Map<string, KnownModel>();
  private readonly waiters = new Map<string, (outcome: EventOutcome) => void>();

  constructor(private readonly applyFn: ApplyFn) {}

  /** Notified events (origin remote unless registered by us). */
  push(events: readonly Event[]): void {
    if (events.length === 0) return;
    if (this.holds > 0 || this.registers > 0) {
      for (const e of events) this.deferred.push(e);
      return;
    }
    this.applyNow(events.slice());
  }

  hold(): void {
    this.holds++;
  }

  release(): void {
    if (this.holds === 0) return;
    this.holds--;
    this.applyReleased(null);
  }

  /** Held while a register request is in flight. */
  holdRegister(): void {
    this.registers++;
  }

  /**
   * The register request answered first among those in flight is done. `upTo`: its last event
   * (null when it registered nothing or failed): with other requests still in flight, the held
   * events up to it are applied and the later ones stay held.
   */
  releaseRegister(upTo: EventRef | null): void {
    if (this.registers === 0) return;
    this.registers--;
    this.applyReleased(upTo);
  }

  private applyReleased(upTo: EventRef | null): void {
    if (this.holds > 0 || this.deferred.length === 0) return;
    if (this.registers === 0) {
      const events = this.deferred;
      this.deferred = [];
      this.applyNow(events);
      return;
    }
    if (upTo === null) return;
    const now: Event[] = [];
    const later: Event[] = [];
    for (const e of this.deferred) (compareRefs(refOf(e), upTo) <= 0 ? now : later).push(e);
    if (now.length === 0) return;
    this.deferred = later;
    this.applyNow(now);
  }

  /**
   * Our own registered events (from MsgRegisterRes), applied as `local`. `onApplied(i, outcome)`
   * runs for each once it is applied (at once when the intake is not held).
   */
  addLocal(
    events: readonly Event[],
    onApplied: (index: number, outcome: EventOutcome) => void,
    known: readonly (KnownModel | undefined)[] = [],
  ): void {
    events.forEach((e, i) => {
      const key = refKey(e.id);
      this.localKeys.add(key);
      const k = known[i];
      if (k !== undefined) this.known.set(key, k);
      this.waiters.set(key, (o) => onApplied(i, o));
    });
    this.push(events);
  }

  private applyNow(events: Event[]): void {
    const outcomes = this.applyFn(
      events,
      (ref) => (this.localKeys.has(refKey(ref)) ? 'local' : 'remote'),
      (ref) => (this.known.size === 0 ? undefined : this.known.get(refKey(ref))),
    );
    for (const o of outcomes) {
      const key = refKey(o.ref);
      const waiter = this.waiters.get(key);
      if (waiter === undefined) continue;
      this.waiters.delete(key);
      this.localKeys.delete(key);
      this.known.delete(key);
      waiter(o);
    }
  }
}
