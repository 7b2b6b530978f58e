/**
 * Applies a JSON Patch (RFC 6902: add, remove, replace, move, copy, test) to a JSON value without
 * modifying it: the result shares untouched parts with the input.
 *
 * Containers are copied once per patch, not once per operation: a container copied by an earlier
 * operation of the same patch is changed in place (a state diff adding n models to a state of N
 * copies the `models` object once, O(N + n), instead of n times, O(N·n)). `move` and `copy` may
 * make two places share a container, so after them every container is copied again before a change.
 */

export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

export class PatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatchError';
  }
}

/** Containers created by the patch being applied (changed in place by its later operations). */
let fresh: WeakSet<object> = new WeakSet();

export function applyPatch(doc: unknown, ops: readonly JsonPatchOp[]): unknown {
  fresh = new WeakSet();
  try {
    let cur = doc;
    for (const op of ops) cur = applyOp(cur, op);
    return cur;
  } finally {
    fresh = new WeakSet();
  }
}

/** `c` itself when this patch created it, else a copy that this patch now owns. */
function own<C extends Container>(c: C): C {
  if (fresh.has(c)) return c;
  const copy = (Array.isArray(c) ? c.slice() : { ...c }) as C;
  fresh.add(copy);
  return copy;
}

function applyOp(doc: unknown, op: JsonPatchOp): unknown {
  const path = parsePointer(op.path);
  if (path.length === 0 && op.op !== 'test') {
    if (op.op === 'remove') return null;
    if (op.op === 'move' || op.op === 'copy') return getPath(doc, parsePointer(op.from));
    return (op as { value: unknown }).value;
  }
  switch (op.op) {
    case 'add':
      return update(doc, path, (parent, key) => insert(parent, key, op.value));
    case 'remove':
      return update(doc, path, (parent, key) => removeKey(parent, key));
    case 'replace':
      return update(doc, path, (parent, key) => {
        get(parent, key);
        return setKey(parent, key, op.value);
      });
    case 'move': {
      fresh = new WeakSet(); // the moved value may be shared from now on
      const from = parsePointer(op.from);
      const value = getPath(doc, from);
      const without = update(doc, from, (parent, key) => removeKey(parent, key));
      return update(without, path, (p, k) => insert(p, k, value));
    }
    case 'copy': {
      fresh = new WeakSet(); // the copied value is shared from now on
      const value = getPath(doc, parsePointer(op.from));
      return update(doc, path, (p, k) => insert(p, k, value));
    }
    case 'test':
      if (JSON.stringify(getPath(doc, path)) !== JSON.stringify(op.value))
        throw new PatchError(`test failed at ${op.path}`);
      return doc;
    default:
      throw new PatchError(`unsupported patch op ${JSON.stringify((op as { op: unknown }).op)}`);
  }
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Container = Record<string, unknown> | unknown[];

function asContainer(v: unknown): Container {
  if (typeof v === 'object' && v !== null) return v as Container;
  throw new PatchError('path goes through a value that is not an object or array');
}

/** Copies the containers along a non-empty `path` and lets `fn` change the last one. */
function update(
  doc: unknown,
  path: string[],
  fn: (parent: Container, key: string) => Container,
): unknown {
  const [head, ...rest] = path as [string, ...string[]];
  const container = asContainer(doc);
  if (rest.length === 0) return fn(container, head);
  return setKey(container, head, update(get(container, head), rest, fn));
}

function get(c: Container, key: string): unknown {
  if (Array.isArray(c)) {
    const i = index(key, c.length - 1);
    return c[i];
  }
  if (!Object.hasOwn(c, key)) throw new PatchError(`no member ${JSON.stringify(key)}`);
  return c[key];
}

function getPath(doc: unknown, path: string[]): unknown {
  let cur = doc;
  for (const key of path) cur = get(asContainer(cur), key);
  return cur;
}

function setKey(c: Container, key: string, value: unknown): Container {
  if (Array.isArray(c)) {
    const i = index(key, c.length - 1);
    const copy = own(c);
    copy[i] = value;
    return copy;
  }
  const copy = own(c);
  putMember(copy, key, value);
  return copy;
}

/**
 * Sets an object's own member, also one named `__proto__` (an assignment would set the object's
 * prototype instead: JSON may name a member so, and a peer's patch must not change prototypes).
 */
function putMember(o: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
  else o[key] = value;
}

function insert(c: Container, key: string, value: unknown): Container {
  if (Array.isArray(c)) {
    const i = key === '-' ? c.length : index(key, c.length);
    const copy = own(c);
    copy.splice(i, 0, value);
    return copy;
  }
  const copy = own(c);
  putMember(copy, key, value);
  return copy;
}

function removeKey(c: Container, key: string): Container {
  if (Array.isArray(c)) {
    const i = index(key, c.length - 1);
    const copy = own(c);
    copy.splice(i, 1);
    return copy;
  }
  if (!Object.hasOwn(c, key)) throw new PatchError(`no member ${JSON.stringify(key)}`);
  const copy = own(c);
  delete copy[key];
  return copy;
}

function index(key: string, max: number): number {
  if (!/^(0|[1-9]\d*)$/.test(key))
    throw new PatchError(`invalid array index ${JSON.stringify(key)}`);
  const i = Number(key);
  if (i > max) throw new PatchError(`array index ${i} out of range`);
  return i;
}
