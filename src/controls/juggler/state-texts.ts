/**
 * The state messages of one flush: what each session is sent to go from the state it was sent
 * last to the one it may see now. Most sessions take the view's last step (a diff of the changed
 * models only); the whole `models` object is built only for a session's first state and for the
 * rare steps that need it (a login, a logout, a role change).
 */
import { fullStateText, modelsDeltaText } from './fast-texts.js';
import { stateText } from './messages.js';
import { EMPTY_STATE, type ModelsVersion, type ModelView, type StateRoot } from './model-view.js';
import { diff } from './patch.js';

/** The state a flush pushes to the sessions that may see models. */
export interface PushedState {
  readonly version: ModelsVersion;
  /** The root's `redundancy` member in a redundant group (the same object while unchanged). */
  readonly redundancy: Readonly<Record<string, unknown>> | undefined;
}

/** What a session was sent last: a pushed state, or `empty` (a session that may not see models). */
export type SentState = PushedState | 'empty';

/**
 * The texts of one flush, each computed once per pair of states. A session was sent either
 * nothing yet, `empty`, or a state of the previous flush (every ready session gets every flush),
 * so the versions involved are the view's current one and the one before it.
 */
export class StateTexts {
  private readonly cache = new Map<SentState | undefined, Map<SentState, string | null>>();
  private readonly roots = new Map<SentState, StateRoot>();

  constructor(private readonly view: ModelView) {}

  get(from: SentState | undefined, to: SentState): string | null {
    let byTarget = this.cache.get(from);
    if (byTarget === undefined) {
      byTarget = new Map();
      this.cache.set(from, byTarget);
    }
    let text = byTarget.get(to);
    if (text === undefined) {
      text = this.make(from, to);
      byTarget.set(to, text);
    }
    return text;
  }

  private make(from: SentState | undefined, to: SentState): string | null {
    if (from === undefined) return fullStateText(this.root(to));
    if (from === to) return null;
    if (
      from !== 'empty' &&
      to !== 'empty' &&
      from.redundancy === to.redundancy &&
      this.view.isStep(from.version, to.version)
    ) {
      return modelsDeltaText(to.version.delta);
    }
    // (Not expected: every ready session gets every flush. Should a session hold a version whose
    // models are gone, it gets the whole state, as a first state, rather than a flush failing.)
    if (from !== 'empty' && !this.view.holds(from.version)) return fullStateText(this.root(to));
    const ops = diff(this.root(from), this.root(to));
    return ops.length === 0 ? null : stateText(ops);
  }

  /** The whole state as a JSON value (members in the order AIMM's state has them). */
  private root(s: SentState): StateRoot {
    if (s === 'empty') return EMPTY_STATE;
    let root = this.roots.get(s);
    if (root === undefined) {
      const models = this.view.models(s.version);
      root = (
        s.redundancy === undefined
          ? { models, actions: EMPTY_STATE.actions }
          : { models, actions: EMPTY_STATE.actions, redundancy: s.redundancy }
      ) as StateRoot;
      this.roots.set(s, root);
    }
    return root;
  }
}
