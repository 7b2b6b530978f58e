/**
 * SBS schema text (`.sbs` files, hat-sbs 0.7 syntax) → codec types.
 *
 * ```
 * module Test                       # one module per text; '#' starts a comment
 * Rec = Record { a: Integer  b: String  c: Optional(Bytes) }
 * Ch = Choice { x: None  y: Integer }
 * Pair(A, B) = Record { first: A  second: B }      # generic, expanded when used
 * IntStrPair = Pair(Integer, String)
 * ```
 *
 * Built-ins: `None Boolean Integer Float String Bytes`, `Array(T)`, and `Optional(T)` (the generic
 * `Choice { none: None value: T }`). Any choice of exactly that shape gets the Optional value form
 * (`T | null`, or the choice form when T is None or an Optional). Entries may be separated by
 * whitespace or commas. References are `Name` (same module) or `Module.Name`, with arguments for
 * generics. Definitions may be recursive.
 */
import {
  array,
  boolean,
  bytes,
  choice,
  float,
  integer,
  lazy,
  none,
  optional,
  record,
  type SbsType,
  string,
} from './codec.js';

export class SbsSchemaError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`SBS schema, line ${line} column ${column}: ${message}`);
    this.name = 'SbsSchemaError';
  }
}

type TypeExpr =
  | { k: 'ref'; module: string | null; name: string; args: TypeExpr[]; at: Pos }
  | { k: 'record' | 'choice'; entries: [string, TypeExpr][]; at: Pos };

interface Pos {
  line: number;
  column: number;
}

interface Definition {
  module: string;
  name: string;
  params: string[];
  body: TypeExpr;
}

interface Token {
  t: 'ident' | 'punct' | 'eof';
  v: string;
  at: Pos;
}

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let lineStart = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\n') {
      line++;
      i++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    const at = { line, column: i - lineStart + 1 };
    if ('(){}:=,.'.includes(c)) {
      out.push({ t: 'punct', v: c, at });
      i++;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 256));
    if (m === null)
      throw new SbsSchemaError(`unexpected character ${JSON.stringify(c)}`, at.line, at.column);
    out.push({ t: 'ident', v: m[0], at });
    i += m[0].length;
  }
  out.push({ t: 'eof', v: '', at: { line, column: i - lineStart + 1 } });
  return out;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)] as Token;
  }

  next(): Token {
    const t = this.peek();
    if (t.t !== 'eof') this.i++;
    return t;
  }

  fail(msg: string, t = this.peek()): never {
    throw new SbsSchemaError(
      `${msg} (found ${t.t === 'eof' ? 'end of text' : JSON.stringify(t.v)})`,
      t.at.line,
      t.at.column,
    );
  }

  ident(): string {
    const t = this.peek();
    if (t.t !== 'ident') this.fail('expected a name');
    this.i++;
    return t.v;
  }

  punct(p: string): void {
    const t = this.peek();
    if (t.t !== 'punct' || t.v !== p) this.fail(`expected '${p}'`);
    this.i++;
  }

  isPunct(p: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.t === 'punct' && t.v === p;
  }

  module(): { name: string; definitions: Definition[] } {
    if (this.peek().v !== 'module') this.fail("expected 'module'");
    this.next();
    const name = this.ident();
    const definitions: Definition[] = [];
    while (this.peek().t !== 'eof') {
      const defName = this.ident();
      const params: string[] = [];
      if (this.isPunct('(')) {
        this.next();
        params.push(this.ident());
        while (this.isPunct(',')) {
          this.next();
          params.push(this.ident());
        }
        this.punct(')');
      }
      this.punct('=');
      definitions.push({ module: name, name: defName, params, body: this.type() });
    }
    return { name, definitions };
  }

  type(): TypeExpr {
    const t = this.peek();
    if (t.t !== 'ident') this.fail('expected a type');
    if ((t.v === 'Record' || t.v === 'Choice') && this.isPunct('{', 1)) {
      this.i += 2;
      const entries: [string, TypeExpr][] = [];
      while (!this.isPunct('}')) {
        const name = this.ident();
        this.punct(':');
        entries.push([name, this.type()]);
        if (this.isPunct(',')) this.next();
      }
      this.next();
      if (entries.length === 0) this.fail(`${t.v} needs at least one entry`, t);
      return { k: t.v === 'Record' ? 'record' : 'choice', entries, at: t.at };
    }
    this.next();
    let module: string | null = null;
    let name = t.v;
    if (this.isPunct('.')) {
      this.next();
      module = name;
      name = this.ident();
    }
    const args: TypeExpr[] = [];
    if (this.isPunct('(')) {
      this.next();
      args.push(this.type());
      while (this.isPunct(',')) {
        this.next();
        args.push(this.type());
      }
      this.punct(')');
    }
    return { k: 'ref', module, name, args, at: t.at };
  }

  end(): void {
    if (this.peek().t !== 'eof') this.fail('unexpected text after the type');
  }
}

const PRIMITIVES: Record<string, SbsType<unknown>> = {
  None: none,
  Boolean: boolean,
  Integer: integer,
  Float: float,
  String: string,
  Bytes: bytes,
};

/** A set of SBS modules; types are looked up by full name or built from type expressions. */
export class Repository {
  private readonly definitions = new Map<string, Definition>();
  private readonly resolved = new Map<string, SbsType<unknown>>();

  constructor(...schemas: string[]) {
    for (const s of schemas) this.add(s);
  }

  /** Adds one module's schema text. Throws {@link SbsSchemaError} on syntax errors or redefinitions. */
  add(schema: string): this {
    const parsed = new Parser(tokenize(schema)).module();
    for (const d of parsed.definitions) {
      const full = `${d.module}.${d.name}`;
      if (this.definitions.has(full)) {
        throw new SbsSchemaError(`${full} is defined twice`, d.body.at.line, d.body.at.column);
      }
      this.definitions.set(full, d);
    }
    return this;
  }

  /** Full names of all defined types (generics included, as `Module.Name`). */
  names(): string[] {
    return [...this.definitions.keys()];
  }

  /** The codec type of a non-generic definition, e.g. `Test.Rec`. */
  get(fullName: string): SbsType<unknown> {
    return this.parseType(fullName);
  }

  /**
   * The codec type of a type expression such as `Array(Array(String))`, `Optional(Test.Rec)` or
   * `Test.Pair(Boolean, Array(Integer))`; unqualified names resolve in `module` when given.
   */
  parseType(expression: string, module: string | null = null): SbsType<unknown> {
    const p = new Parser(tokenize(expression));
    const expr = p.type();
    p.end();
    return this.build(expr, module, new Map());
  }

  private build(
    expr: TypeExpr,
    module: string | null,
    env: Map<string, SbsType<unknown>>,
    name?: string,
  ): SbsType<unknown> {
    if (expr.k !== 'ref') {
      const entries: Record<string, SbsType<unknown>> = {};
      for (const [k, e] of expr.entries) {
        if (Object.hasOwn(entries, k)) {
          throw new SbsSchemaError(`duplicate entry ${k}`, expr.at.line, expr.at.column);
        }
        entries[k] = this.build(e, module, env);
      }
      const label = name ?? (expr.k === 'record' ? 'Record' : 'Choice');
      if (expr.k === 'record') return record(label, entries);
      const keys = Object.keys(entries);
      if (keys.length === 2 && keys[0] === 'none' && keys[1] === 'value' && entries.none === none) {
        return optional(entries.value as SbsType<unknown>);
      }
      return choice(label, entries);
    }
    const args = expr.args.map((a) => this.build(a, module, env));
    const fail = (msg: string): never => {
      throw new SbsSchemaError(msg, expr.at.line, expr.at.column);
    };
    if (expr.module === null) {
      const param = env.get(expr.name);
      if (param !== undefined) {
        if (args.length > 0) fail(`type parameter ${expr.name} takes no arguments`);
        return param;
      }
      const primitive = PRIMITIVES[expr.name];
      if (primitive !== undefined) {
        if (args.length > 0) fail(`${expr.name} takes no arguments`);
        return primitive;
      }
      if (expr.name === 'Array' || expr.name === 'Optional') {
        if (args.length !== 1) fail(`${expr.name} takes exactly one argument`);
        const arg = args[0] as SbsType<unknown>;
        return expr.name === 'Array' ? array(arg) : optional(arg);
      }
    }
    const mod = expr.module ?? module;
    const full = mod === null ? expr.name : `${mod}.${expr.name}`;
    const def = this.definitions.get(full);
    if (def === undefined) return fail(`unknown type ${full}`);
    if (def.params.length !== args.length) {
      fail(`${full} takes ${def.params.length} argument(s), got ${args.length}`);
    }
    if (def.params.length === 0) {
      const cached = this.resolved.get(full);
      if (cached !== undefined) return cached;
      // Placeholder first, so recursive references resolve to the same type.
      let target: SbsType<unknown> | undefined;
      this.resolved.set(
        full,
        lazy(full, () => target as SbsType<unknown>),
      );
      target = this.build(def.body, def.module, new Map(), full);
      this.resolved.set(full, target);
      return target;
    }
    const instance = `${full}(${args.map((a) => a.name).join(', ')})`;
    const cached = this.resolved.get(instance);
    if (cached !== undefined) return cached;
    const scope = new Map(def.params.map((p, i) => [p, args[i] as SbsType<unknown>]));
    const built = this.build(def.body, def.module, scope, instance);
    this.resolved.set(instance, built);
    return built;
  }
}
