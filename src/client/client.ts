/**
 * `JugglerClient`: the aimm-store client for programs (and the base of the CLI). It speaks Juggler
 * to an aimm-store daemon (or anything implementing the same API), logs in when given a user, and
 * offers the model operations with our metadata: put, get, getMeta, list, remove, watch.
 */
import { createHash } from 'node:crypto';
import { filter, map, type Observable } from 'rxjs';
import {
  type ConnectionClosedError,
  type ConnectionOptions,
  JugglerConnection,
  RequestFailedError,
} from './connection.js';

export const DEFAULT_ADDRESS = 'ws://127.0.0.1:9950/';

export interface ConnectOptions extends ConnectionOptions {
  username?: string;
  /** Clear password; the client sends its SHA-256 hex, as AIMM's client does. */
  password?: string;
  /** Wait for the server's first state push before resolving (needed for `state`; default false). */
  sync?: boolean;
}

/** A model's metadata as the server reports it. */
/** One revision in a model's history (`history`). */
export interface RevisionInfo {
  instanceId: number;
  modelType: string;
  revision: number;
  size: number;
  /** Null for a deletion. */
  sha256: string | null;
  updated: string;
  deleted: boolean;
  /** `local`: written through this store; `remote`: another writer; null: unknown. */
  origin: 'local' | 'remote' | null;
  /** The revision's bytes can be read (`getRevision`). */
  available: boolean;
  current: boolean;
}

export interface ModelInfo {
  instanceId: number;
  modelType: string;
  revision: number;
  size: number;
  /** Lowercase hex SHA-256 of the instance bytes. */
  sha256: string;
  /** ISO-8601 time of the last write. */
  updated: string;
  /** On writes: what the acknowledgement means (`committed`, `registered`, `persisted`, `queued`). */
  ack?: string;
  /**
   * True while `revision` is a lower bound the server is still completing (the event backend
   * after a start without a snapshot): it rises without a write, and compare-and-set against it
   * fails. Absent when exact.
   */
  revisionProvisional?: true;
}

export interface StoredModel extends ModelInfo {
  instance: Uint8Array;
}

export interface RemoveResult {
  instanceId: number;
  modelType: string;
  /** Revision of the deletion. */
  revision: number;
  ack?: string;
  /** As {@link ModelInfo.revisionProvisional}. */
  revisionProvisional?: true;
}

export interface ModelChangeEvent {
  change: 'created' | 'updated' | 'deleted';
  instanceId: number;
  modelType: string;
  revision: number;
  origin: 'local' | 'remote';
  size?: number;
  sha256?: string;
  updated?: string;
  /** As {@link ModelInfo.revisionProvisional}. */
  revisionProvisional?: true;
}

export interface PutOptions {
  /** Update this model instead of creating a new one. */
  instanceId?: number;
  /** Compare-and-set: fail unless the stored revision is this one (with `instanceId`). */
  expectedRevision?: number;
}

/** The server's state as this client sees it. */
export interface ClientState {
  models: Record<string, Record<string, unknown>>;
  actions: Record<string, unknown>;
  /** Only from a daemon in a redundant Hat: its role and the group's active instance. */
  redundancy?: {
    role: 'active' | 'standby' | 'disconnected';
    group: string;
    active: {
      name: string | null;
      self: boolean;
      juggler: string | null;
      http: string | null;
    } | null;
    event_server: { serverId: number; address: string; name: string | null } | null;
  };
}

export class AuthenticationError extends Error {
  constructor(username: string) {
    super(`login as '${username}' failed`);
    this.name = 'AuthenticationError';
  }
}

export class JugglerClient {
  private constructor(private readonly conn: JugglerConnection) {}

  static async connect(
    url = DEFAULT_ADDRESS,
    options: ConnectOptions = {},
  ): Promise<JugglerClient> {
    const conn = await JugglerConnection.open(url, options);
    try {
      if (options.username !== undefined) {
        const password = createHash('sha256')
          .update(options.password ?? '', 'utf8')
          .digest('hex');
        const r = (await conn.send('login', { username: options.username, password })) as {
          success?: unknown;
        } | null;
        if (r?.success !== true) throw new AuthenticationError(options.username);
      } else {
        // Our first message tells an auto-detecting server our framing without waiting.
        conn.ping();
      }
      if (options.sync === true)
        await withTimeout(
          conn.waitForState(),
          options.connectTimeout ?? 10_000,
          'the server sent no state',
        );
    } catch (err) {
      await conn.close();
      throw err;
    }
    return new JugglerClient(conn);
  }

  /** Stores a model: creates one (new id) or, with `instanceId`, replaces that model. */
  async put(modelType: string, instance: Uint8Array, options: PutOptions = {}): Promise<ModelInfo> {
    const instance_b64 = toBase64(instance);
    let data: unknown;
    if (options.instanceId === undefined) {
      if (options.expectedRevision !== undefined)
        throw new TypeError('expectedRevision needs instanceId (a new model has no revision)');
      data = await this.conn.send('add_instance', {
        model_type: modelType,
        instance_b64,
        meta_only: true,
      });
    } else {
      data = await this.conn.send('update_instance', {
        model_type: modelType,
        instance_id: options.instanceId,
        instance_b64,
        expected_revision: options.expectedRevision,
        meta_only: true,
      });
    }
    return toInfo(data);
  }

  /** A model with its bytes. */
  async get(instanceId: number): Promise<StoredModel> {
    const data = (await this.conn.send('get_instance', { instance_id: instanceId })) as Record<
      string,
      unknown
    >;
    const instance = Buffer.from(String(data.instance), 'base64');
    return {
      ...toInfo(data),
      instance: new Uint8Array(instance.buffer, instance.byteOffset, instance.length),
    };
  }

  /** A model's metadata (no bytes). */
  async getMeta(instanceId: number): Promise<ModelInfo> {
    return toInfo(
      await this.conn.send('get_instance', { instance_id: instanceId, meta_only: true }),
    );
  }

  /** A model's revisions the server keeps, oldest first (`after`/`limit` page through them). */
  async history(
    instanceId: number,
    options: { after?: number; limit?: number } = {},
  ): Promise<RevisionInfo[]> {
    const data = await this.conn.send('get_history', {
      instance_id: instanceId,
      after: options.after,
      limit: options.limit,
    });
    if (!Array.isArray(data)) throw new Error('get_history: the server did not answer a list');
    return data.map(toRevision);
  }

  /** An earlier (or the current) revision of a model, with its bytes. */
  async getRevision(instanceId: number, revision: number): Promise<StoredModel> {
    const data = (await this.conn.send('get_revision', {
      instance_id: instanceId,
      revision,
    })) as Record<string, unknown>;
    const instance = Buffer.from(String(data.instance), 'base64');
    return {
      ...toInfo(data),
      instance: new Uint8Array(instance.buffer, instance.byteOffset, instance.length),
    };
  }

  /**
   * Stores revision `toRevision`'s bytes and type as a new revision, with compare-and-set against
   * `expectedRevision` (default: the revision the server reads first).
   */
  async rollback(
    instanceId: number,
    toRevision: number,
    options: { expectedRevision?: number } = {},
  ): Promise<ModelInfo> {
    return toInfo(
      await this.conn.send('rollback_instance', {
        instance_id: instanceId,
        revision: toRevision,
        expected_revision: options.expectedRevision,
      }),
    );
  }

  /** Metadata of every stored model, ascending by id. */
  async list(): Promise<ModelInfo[]> {
    const data = await this.conn.send('list_instances', null);
    if (!Array.isArray(data)) throw new Error('list_instances: the server did not answer a list');
    return data.map(toInfo);
  }

  async remove(
    instanceId: number,
    options: { expectedRevision?: number } = {},
  ): Promise<RemoveResult> {
    const d = (await this.conn.send('remove_instance', {
      instance_id: instanceId,
      expected_revision: options.expectedRevision,
    })) as Record<string, unknown>;
    const r: RemoveResult = {
      instanceId: Number(d.instance_id),
      modelType: String(d.model_type),
      revision: Number(d.revision),
    };
    if (typeof d.ack === 'string') r.ack = d.ack;
    if (d.revision_provisional === true) r.revisionProvisional = true;
    return r;
  }

  /**
   * Every model change the server reports from now on (local or remote), until the connection
   * closes (the Observable then completes).
   */
  watch(): Observable<ModelChangeEvent> {
    return this.conn.notifications$.pipe(
      filter((n) => n.name === 'model_change'),
      map((n) => toChange(n.data)),
    );
  }

  /** Resolves once the server's first state push has arrived (at once if it already has). */
  whenSynced(): Promise<void> {
    return this.conn.waitForState();
  }

  /** The server's state (null until the first push; see `sync`). */
  get state(): ClientState | null {
    return this.conn.state as ClientState | null;
  }

  get state$(): Observable<ClientState | null> {
    return this.conn.state$ as Observable<ClientState | null>;
  }

  /** Resolves once the connection is closed, by either side. */
  get closed(): Promise<ConnectionClosedError> {
    return this.conn.closed;
  }

  /** Any Juggler request (e.g. AIMM's own); rejects with RequestFailedError on `success: false`. */
  request(name: string, data: unknown): Promise<unknown> {
    return this.conn.send(name, data);
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function toRevision(data: unknown): RevisionInfo {
  const d = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  return {
    instanceId: Number(d.instance_id),
    modelType: String(d.model_type),
    revision: Number(d.revision),
    size: Number(d.size),
    sha256: typeof d.sha256 === 'string' ? d.sha256 : null,
    updated: String(d.updated),
    deleted: d.deleted === true,
    origin: d.origin === 'local' || d.origin === 'remote' ? d.origin : null,
    available: d.available === true,
    current: d.current === true,
  };
}

function toInfo(data: unknown): ModelInfo {
  if (typeof data !== 'object' || data === null)
    throw new Error('unexpected reply from the server');
  const d = data as Record<string, unknown>;
  const info: ModelInfo = {
    instanceId: Number(d.instance_id),
    modelType: String(d.model_type),
    revision: Number(d.revision),
    size: Number(d.size),
    sha256: String(d.sha256),
    updated: String(d.updated),
  };
  if (typeof d.ack === 'string') info.ack = d.ack;
  if (d.revision_provisional === true) info.revisionProvisional = true;
  return info;
}

function toChange(data: unknown): ModelChangeEvent {
  const d = (data ?? {}) as Record<string, unknown>;
  const c: ModelChangeEvent = {
    change: d.change as ModelChangeEvent['change'],
    instanceId: Number(d.instance_id),
    modelType: String(d.model_type),
    revision: Number(d.revision),
    origin: d.origin === 'remote' ? 'remote' : 'local',
  };
  if (typeof d.size === 'number') c.size = d.size;
  if (typeof d.sha256 === 'string') c.sha256 = d.sha256;
  if (typeof d.updated === 'string') c.updated = d.updated;
  if (d.revision_provisional === true) c.revisionProvisional = true;
  return c;
}

export { RequestFailedError };
