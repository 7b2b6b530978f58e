/**
 * What a register request costs a real Hat event server, as CPU time the test peer spends before it
 * registers (optional; off unless a {@link RegisterCost} is given to the peer).
 *
 * Why: the peer is a few lines of JavaScript answering from memory, much cheaper per request than
 * hat-event 0.9.42, so a benchmark against the bare peer compares the daemon's hop with almost
 * nothing. The real server, per register request (`src_py/hat/event/eventer/server.py`,
 * `server/engine.py`, `backends/lmdb/backend.py`), on one Python thread:
 * - reads the message (chatter + SBS decode, C extension) and converts every event from SBS,
 *   parsing each JSON payload (`register_event_from_sbs`);
 * - hands the request to the engine through an asyncio queue and a future (`Engine.register`,
 *   `_register_loop`), which creates the session, its timestamp and each event
 *   (`_process_sessions`, with the configured modules);
 * - registers every event in the LMDB backend's in-memory dbs (`latest.add`, `timeseries.add`,
 *   `ref.add`, system last id / timestamp; the write to disk happens later, in the flush loop's
 *   executor, off this path);
 * - notifies subscribed connections (`registered_events_cb` → `notify_events`: each event
 *   converted to SBS again, JSON payload re-encoded, one message per connection);
 * - answers with every event converted to SBS (`event_to_sbs`, JSON encoded once more).
 * One connection's messages are handled strictly one after another (each register awaited before
 * the next message is read), and the whole server shares the one thread, so the time below blocks
 * every connection, as the real server's does.
 *
 * Calibration (issue 11's figures for the real server with its C extensions, LMDB, on this 2-core
 * machine, measured with Hat's Python client, whose own work and two process wake-ups are in
 * them): acked one by one 1 580 – 2 250 /s (444 – 633 µs a round trip for a ≈ 1.5 KB payload);
 * acked batches of 64 1 KiB models 4 500 – 11 800 events/s (5.4 – 14 ms a batch); 1 MiB models
 * 23 – 34 /s (29 – 43 ms each). {@link REALISTIC_REGISTER_COST} gives the server 250 µs per
 * request + 80 µs per event + 20 µs per KiB of request, i.e. ≈ 360 µs for one 1 KiB model
 * (+ ≈ 100 – 150 µs of Python client and ≈ 80 µs of wake-ups: ≈ 1 850 /s), 7.3 ms for a batch
 * of 64 (≈ 8 700 events/s with the client's encoding) and ≈ 28 ms per MiB (≈ 30 /s): the middle of
 * each measured range. It is a model of the CPU the server spends, not of its code; our peer's own
 * JavaScript runs inside that time (the cost is a floor, not an addition).
 */

export interface RegisterCost {
  /** Fixed CPU time per register request, µs. */
  perRequestUs: number;
  /** CPU time per event in the request, µs. */
  perEventUs: number;
  /** CPU time per KiB of the encoded request (payload parsing, re-encoding), µs. */
  perKiBUs: number;
}

/** hat-event 0.9.42's register cost as calibrated above. */
export const REALISTIC_REGISTER_COST: Readonly<RegisterCost> = Object.freeze({
  perRequestUs: 250,
  perEventUs: 80,
  perKiBUs: 20,
});

/** CPU time one register request of `events` events and `bytes` bytes costs, in ms. */
export function registerCostMs(cost: RegisterCost, events: number, bytes: number): number {
  return (cost.perRequestUs + cost.perEventUs * events + (cost.perKiBUs * bytes) / 1024) / 1000;
}

/**
 * Keeps the thread busy until `startedAt + ms` (performance.now() time): CPU spent, as the real
 * server's, not a timer (a sleeping server would let other work run on its core).
 */
export function spinUntil(startedAt: number, ms: number): void {
  const end = startedAt + ms;
  while (performance.now() < end) {
    // busy: this is the cost being modelled
  }
}
