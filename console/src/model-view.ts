/**
 * One model: its current revision (`HEAD /models/{id}`), its history (`GET /models/{id}/revisions`),
 * a download of any revision, and for the role `write` an upload of a new revision (compare-and-set
 * on the revision shown, with the ETag the server sent for it; progress from XMLHttpRequest) and a
 * rollback with a confirmation. While the server marks the revision provisional (a weak ETag) the
 * page says so instead of sending a compare-and-set that cannot succeed.
 */
import {
  ApiError,
  authHeaders,
  compareTag,
  getJson,
  type ModelMeta,
  type Revision,
  request,
} from './api.js';
import { h, setChildren } from './dom.js';
import { formatSize, formatTime, shortHash } from './format.js';
import type { ModelStore } from './store.js';

/** The current revision as `HEAD /models/{id}` described it, with its `ETag` header. */
interface Current extends ModelMeta {
  etag: string | null;
}

export class ModelView {
  readonly root: HTMLElement;
  private readonly body: HTMLDivElement;
  private readonly message: HTMLParagraphElement;
  private readonly notice: HTMLParagraphElement;
  /** The current revision shown (null: none, or deleted). */
  private shown: Current | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly id: number,
    private readonly store: ModelStore,
    private readonly canWrite: boolean,
  ) {
    this.message = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
    this.notice = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
    this.body = h('div', { class: 'model-body' }, 'Loading…');
    this.root = h(
      'section',
      { class: 'model-view', 'aria-labelledby': 'model-title' },
      h('p', {}, h('a', { href: '#/' }, '← All models')),
      h('h1', { id: 'model-title' }, `Model ${id}`),
      this.notice,
      this.body,
      this.message,
    );
  }

  mount(): void {
    // A change by someone else while this page shows the model: say so, keep what is shown
    // (the upload and rollback compare-and-set on it).
    this.unsubscribe = this.store.subscribe((ids) => {
      if (ids !== null && !ids.has(this.id)) return;
      const now = this.store.models.get(this.id);
      const shown = this.shown;
      if (shown === null || now === undefined) return;
      if (
        now.revision === shown.revision &&
        (now.revision_provisional ?? false) === (shown.revision_provisional ?? false)
      )
        return;
      this.notice.hidden = false;
      // The exact revision replacing a provisional one (same bytes) is no change by anyone.
      const exactNow =
        shown.revision_provisional === true &&
        now.revision_provisional !== true &&
        now.sha256 === shown.sha256;
      setChildren(
        this.notice,
        exactNow
          ? `The exact revision of this model is now known: ${now.revision}. `
          : `This model changed meanwhile: it is now at revision ${now.revision}. `,
        h(
          'button',
          { type: 'button', onclick: () => void this.load() },
          exactNow ? 'Show it' : 'Show the new revision',
        ),
      );
    });
    void this.load();
  }

  unmount(): void {
    this.unsubscribe?.();
  }

  private say(text: string, kind: 'ok' | 'error' = 'ok'): void {
    this.message.textContent = text;
    this.message.className = `message ${kind}`;
  }

  async load(): Promise<void> {
    this.notice.hidden = true;
    let current: Current | null = null;
    try {
      current = await headMeta(this.id);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
    let history: Revision[] | null = null;
    let historyNote = '';
    try {
      history = await getJson<Revision[]>(`/models/${this.id}/revisions`);
    } catch (err) {
      // 404: no such model; 400 or 404: a server without the history routes (older daemon);
      // 503: not yet (the event backend is still counting the history from Hat).
      if (!(err instanceof ApiError) || ![400, 404, 503].includes(err.status)) throw err;
      historyNote =
        err.status === 503
          ? `The history of this model is not available yet: ${err.message}.`
          : 'The history of this model is not available from this server.';
    }
    this.shown = current;
    setChildren(
      this.body,
      current === null
        ? h('p', {}, history === null ? 'No such model.' : 'This model is deleted.')
        : this.summary(current),
      this.canWrite && current !== null && this.uploadPanel(current),
      history === null ? h('p', {}, historyNote) : this.historyTable(history),
      h('dialog', { id: 'confirm-rollback', 'aria-labelledby': 'confirm-title' }),
    );
  }

  private summary(m: ModelMeta): HTMLElement {
    const row = (k: string, v: string) => [h('dt', {}, k), h('dd', {}, v)];
    return h(
      'div',
      { class: 'summary' },
      h(
        'dl',
        {},
        ...row('Type', m.model_type),
        ...row(
          'Revision',
          m.revision_provisional === true
            ? `at least ${m.revision} (not exact yet: the server is still counting this model's history)`
            : String(m.revision),
        ),
        ...row('Size', `${formatSize(m.size)} (${m.size} bytes)`),
        ...row('SHA-256', m.sha256),
        ...row('Updated', formatTime(m.updated)),
      ),
      h(
        'button',
        { type: 'button', onclick: () => void this.download(null, m) },
        'Download current',
      ),
    );
  }

  private historyTable(history: Revision[]): HTMLElement {
    const sorted = [...history].sort((a, b) => b.revision - a.revision);
    const current = this.shown;
    return h(
      'section',
      { 'aria-labelledby': 'history-title' },
      h('h2', { id: 'history-title' }, 'History'),
      h(
        'div',
        { class: 'scroll-x' },
        h(
          'table',
          { class: 'history' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Revision', 'Updated', 'Size', 'SHA-256', 'Origin', 'State', 'Actions'].map((t) =>
                h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            ...sorted.map((r) => {
              const state = r.deleted
                ? 'deleted'
                : r.current
                  ? 'current'
                  : r.available
                    ? ''
                    : 'bytes not kept';
              const usable = r.available && !r.deleted;
              return h(
                'tr',
                { 'data-revision': String(r.revision) },
                h('td', {}, String(r.revision)),
                h('td', {}, formatTime(r.updated)),
                h('td', {}, r.deleted ? '—' : formatSize(r.size)),
                h('td', { class: 'hash', title: r.sha256 }, r.deleted ? '—' : shortHash(r.sha256)),
                h('td', {}, r.origin),
                h('td', {}, state),
                h(
                  'td',
                  { class: 'actions' },
                  usable &&
                    h(
                      'button',
                      {
                        type: 'button',
                        'aria-label': `Download revision ${r.revision}`,
                        onclick: () => void this.download(r.revision, r),
                      },
                      'Download',
                    ),
                  usable &&
                    !r.current &&
                    this.canWrite &&
                    current !== null &&
                    h(
                      'button',
                      {
                        type: 'button',
                        class: 'rollback',
                        'aria-label': `Roll back to revision ${r.revision}`,
                        onclick: () => this.confirmRollback(r.revision, current),
                      },
                      'Roll back',
                    ),
                ),
              );
            }),
          ),
        ),
      ),
    );
  }

  private async download(revision: number | null, m: ModelMeta): Promise<void> {
    const path =
      revision === null ? `/models/${this.id}` : `/models/${this.id}/revisions/${revision}`;
    try {
      this.say(`Downloading revision ${m.revision}…`);
      const blob = await (await request(path)).blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `model-${this.id}-r${m.revision}.bin` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      this.say(`Downloaded revision ${m.revision} (${formatSize(blob.size)}).`);
    } catch (err) {
      this.say(`Download failed: ${errorText(err)}`, 'error');
    }
  }

  /**
   * The `If-Match` for a compare-and-set on `m`: the ETag the server sent for it; null, after
   * saying why, while the revision is provisional (its weak ETag never matches).
   */
  private ifMatch(m: Current): string | null {
    const tag = compareTag(m.etag);
    if (tag !== null && m.revision_provisional !== true) return tag;
    this.say(
      `Not sent: revision ${m.revision} is not exact yet (the server is still counting this ` +
        "model's history), so a compare-and-set on it cannot be checked. Wait until the exact " +
        'revision is shown, then try again.',
      'error',
    );
    return null;
  }

  private uploadPanel(m: Current): HTMLElement {
    const file = h('input', { id: 'upload-file', type: 'file' });
    const type = h('input', {
      id: 'upload-type',
      type: 'text',
      value: m.model_type,
      required: true,
    });
    const progress = h('progress', { id: 'upload-progress', max: '100', value: '0', hidden: true });
    const drop = h(
      'div',
      { class: 'drop', id: 'drop-zone' },
      h('p', {}, `Drop a file here, or choose one, to store it as revision ${m.revision + 1}.`),
      h('label', { for: 'upload-file' }, 'Model file'),
      file,
      h('label', { for: 'upload-type' }, 'Model type'),
      type,
      h(
        'button',
        {
          type: 'submit',
          id: 'upload-button',
        },
        'Upload new revision',
      ),
      progress,
    );
    let dropped: File | null = null;
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      const f = e.dataTransfer?.files[0];
      if (f !== undefined) {
        dropped = f;
        this.say(`Ready to upload ${f.name} (${formatSize(f.size)}).`);
      }
    });
    file.addEventListener('change', () => {
      dropped = null;
    });
    const form = h(
      'form',
      { class: 'upload', 'aria-labelledby': 'upload-title' },
      h('h2', { id: 'upload-title' }, 'Upload a new revision'),
      drop,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const f = dropped ?? file.files?.[0];
      if (f === undefined) {
        this.say('Choose or drop a file first.', 'error');
        return;
      }
      void this.upload(f, type.value, m, progress);
    });
    return form;
  }

  private upload(f: File, type: string, m: Current, progress: HTMLProgressElement): Promise<void> {
    const tag = this.ifMatch(m);
    if (tag === null) return Promise.resolve();
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', `/models/${this.id}?type=${encodeURIComponent(type)}`);
      for (const [k, v] of Object.entries(authHeaders({ 'If-Match': tag })))
        xhr.setRequestHeader(k, v);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      progress.hidden = false;
      progress.value = 0;
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
      });
      xhr.addEventListener('load', () => {
        progress.hidden = true;
        const body = parse(xhr.responseText);
        if (xhr.status === 200 || xhr.status === 201) {
          void this.load().then(() =>
            this.say(`Stored as revision ${String(body?.revision ?? '?')}.`),
          );
        } else if (xhr.status === 412) {
          const now = (body?.current as { revision?: number } | null)?.revision;
          this.say(
            `Not stored: the model changed meanwhile (revision ${m.revision} is no longer the ` +
              `current one${now === undefined ? '' : `; it is now at ${now}`}). ` +
              'Show the new revision, then upload again.',
            'error',
          );
        } else {
          this.say(
            `Upload failed: ${String(body?.error ?? `${xhr.status} ${xhr.statusText}`)}`,
            'error',
          );
        }
        resolve();
      });
      xhr.addEventListener('error', () => {
        progress.hidden = true;
        this.say('Upload failed: the connection to the daemon was lost.', 'error');
        resolve();
      });
      xhr.send(f);
    });
  }

  private confirmRollback(to: number, current: Current): void {
    if (this.ifMatch(current) === null) return;
    const dialog = this.body.querySelector<HTMLDialogElement>('#confirm-rollback');
    if (dialog === null) return;
    const cancel = h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel');
    setChildren(
      dialog,
      h('h2', { id: 'confirm-title' }, `Roll back model ${this.id}?`),
      h(
        'p',
        {},
        `Revision ${to}'s bytes become the new revision ${current.revision + 1}. ` +
          `Revision ${current.revision} stays in the history.`,
      ),
      h(
        'div',
        { class: 'buttons' },
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            id: 'confirm-rollback-button',
            onclick: () => {
              dialog.close();
              void this.rollback(to, current);
            },
          },
          `Roll back to revision ${to}`,
        ),
        cancel,
      ),
    );
    dialog.showModal();
    cancel.focus();
  }

  private async rollback(to: number, current: Current): Promise<void> {
    const tag = this.ifMatch(current);
    if (tag === null) return;
    try {
      const res = await request(`/models/${this.id}/rollback?to=${to}`, {
        method: 'POST',
        headers: { 'If-Match': tag },
      });
      const body = parse(await res.text());
      await this.load();
      this.say(
        `Rolled back: revision ${String(body?.revision ?? '?')} holds revision ${to}'s bytes.`,
      );
    } catch (err) {
      if (err instanceof ApiError && err.status === 412)
        this.say(
          'Not rolled back: the model changed meanwhile. Show the new revision and try again.',
          'error',
        );
      else this.say(`Rollback failed: ${errorText(err)}`, 'error');
    }
  }
}

async function headMeta(id: number): Promise<Current> {
  const res = await request(`/models/${id}`, { method: 'HEAD' });
  const hd = res.headers;
  return {
    instance_id: id,
    model_type: decodeURIComponent(hd.get('X-Model-Type') ?? ''),
    revision: Number(hd.get('X-Model-Revision')),
    size: Number(hd.get('Content-Length')),
    sha256: hd.get('X-Model-Sha256') ?? '',
    updated: new Date(hd.get('Last-Modified') ?? '').toISOString(),
    ...(hd.get('X-Model-Revision-Provisional') === 'true' ? { revision_provisional: true } : {}),
    etag: hd.get('ETag'),
  };
}

function parse(text: string): Record<string, unknown> | null {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
