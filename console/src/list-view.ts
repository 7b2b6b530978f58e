/**
 * The model list: a virtualised table (only the rows in view are in the DOM, each ROW_HEIGHT
 * pixels high, so 10 000 models cost what 30 do), filtered by id or type as one types.
 */
import { h, setChildren } from './dom.js';
import { formatSize, formatTime } from './format.js';
import type { ModelStore } from './store.js';

const ROW_HEIGHT = 36;
/** Rows rendered above and below the visible ones. */
const OVERSCAN = 8;

export class ListView {
  readonly root: HTMLElement;
  private readonly viewport: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly rows: HTMLDivElement;
  private readonly count: HTMLParagraphElement;
  private readonly filterInput: HTMLInputElement;
  private visible: number[] = [];
  private filter = '';
  private frame = false;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly store: ModelStore) {
    this.filterInput = h('input', {
      id: 'filter',
      type: 'search',
      placeholder: 'id or type',
      autocomplete: 'off',
      oninput: () => {
        this.filter = this.filterInput.value.trim().toLowerCase();
        this.refilter();
      },
    });
    this.count = h('p', { class: 'count', role: 'status', 'aria-live': 'polite' });
    this.rows = h('div', { class: 'rows', role: 'rowgroup' });
    this.spacer = h('div', { class: 'spacer' }, this.rows);
    this.viewport = h(
      'div',
      { class: 'viewport', tabindex: '-1', onscroll: () => this.schedule() },
      this.spacer,
    );
    const head = h(
      'div',
      { class: 'row head', role: 'row' },
      ...['Id', 'Type', 'Revision', 'Size', 'Updated', 'Origin'].map((t, i) =>
        h('span', { role: 'columnheader', class: `c${i}` }, t),
      ),
    );
    this.root = h(
      'section',
      { class: 'list-view', 'aria-labelledby': 'list-title' },
      h(
        'div',
        { class: 'toolbar' },
        h('h1', { id: 'list-title' }, 'Models'),
        h('label', { for: 'filter' }, 'Filter'),
        this.filterInput,
        this.count,
      ),
      h(
        'div',
        { class: 'table', role: 'table', 'aria-labelledby': 'list-title', id: 'model-table' },
        h('div', { role: 'rowgroup' }, head),
        this.viewport,
      ),
    );
  }

  mount(): void {
    this.unsubscribe = this.store.subscribe(() => this.refilter());
    this.refilter();
  }

  unmount(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private refilter(): void {
    const f = this.filter;
    const { ids, models } = this.store;
    this.visible =
      f === ''
        ? ids
        : ids.filter(
            (id) =>
              String(id).startsWith(f) ||
              (models.get(id)?.model_type.toLowerCase().includes(f) ?? false),
          );
    const n = this.visible.length;
    this.count.textContent =
      f === '' ? `${n} model${n === 1 ? '' : 's'}` : `${n} of ${ids.length} models match`;
    this.spacer.style.height = `${n * ROW_HEIGHT}px`;
    this.root.querySelector('[role=table]')?.setAttribute('aria-rowcount', String(n + 1));
    this.render();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = true;
    requestAnimationFrame(() => {
      this.frame = false;
      this.render();
    });
  }

  private render(): void {
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const out: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const id = this.visible[i] as number;
      const m = this.store.models.get(id);
      if (m === undefined) continue;
      const row = h(
        'div',
        { class: 'row', role: 'row', 'aria-rowindex': String(i + 2), 'data-id': String(id) },
        h('span', { role: 'cell', class: 'c0' }, h('a', { href: `#/models/${id}` }, String(id))),
        h('span', { role: 'cell', class: 'c1', title: m.model_type }, m.model_type),
        h('span', { role: 'cell', class: 'c2' }, String(m.revision)),
        h('span', { role: 'cell', class: 'c3' }, formatSize(m.size)),
        h('span', { role: 'cell', class: 'c4' }, formatTime(m.updated)),
        h('span', { role: 'cell', class: 'c5' }, m.origin ?? '—'),
      );
      row.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
      out.push(row);
    }
    setChildren(this.rows, ...out);
    if (this.store.loaded) {
      this.root.dataset.ready = 'true';
      if (!performance.getEntriesByName('list-usable').length) performance.mark('list-usable');
    }
  }
}
