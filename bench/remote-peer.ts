/**
 * The parent side of `bench/peer-host.ts`: forks the Hat test peer into a process of its own and
 * calls its operations over IPC.
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HatPeerOptions } from '../test/peer/hat-peer.js';
import type { HatModelRow, PeerStats } from './peer-host.js';

export type { HatModelRow, PeerStats };

export interface RemotePeer {
  readonly host: string;
  readonly port: number;
  call<T>(op: string, args?: Record<string, unknown>): Promise<T>;
  stats(): Promise<PeerStats>;
  close(): Promise<void>;
}

/**
 * The peer's walks decode every entry they cross, and in one synchronous walk over a million
 * entries V8's default young generation promotes garbage and spends most of the time in GC (about
 * 10× the walk itself, unlike Python's reference counting in the real server): the host runs with
 * a larger semi-space.
 */
const HOST_FLAGS = ['--max-semi-space-size=64'];

export async function startRemotePeer(opts: HatPeerOptions): Promise<RemotePeer> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'peer-host.js');
  const child = fork(script, [JSON.stringify(opts)], {
    execArgv: HOST_FLAGS,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  child.once('exit', (code, signal) => {
    for (const p of pending.values())
      p.reject(new Error(`peer host exited (${code ?? signal}) with a request pending`));
    pending.clear();
  });
  const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`peer host exited (${code}) before ready`)));
    const onReady = (msg: { ready?: { host: string; port: number } }) => {
      if (msg.ready === undefined) return;
      child.off('message', onReady);
      resolve(msg.ready);
    };
    child.on('message', onReady);
  });
  child.on('message', (msg: { id?: number; result?: unknown; error?: string }) => {
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    if (p === undefined) return;
    pending.delete(msg.id);
    if (msg.error !== undefined) p.reject(new Error(`peer host: ${msg.error}`));
    else p.resolve(msg.result);
  });
  const call = <T>(op: string, args: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, op, args });
    });
  return {
    host: address.host,
    port: address.port,
    call,
    stats: () => call<PeerStats>('stats'),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await call('close').catch(() => undefined);
      await exited;
    },
  };
}
