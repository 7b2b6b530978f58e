/**
 * The embedded default configuration (`aimm-store serve` without `--conf`): the sqlite backend at
 * `./data/aimm-store.db` (relative to the working directory), Juggler on 127.0.0.1:9950 and HTTP on
 * 127.0.0.1:9951. `config/default.yaml` is this same configuration written out (a test keeps them equal).
 */
export const DEFAULT_CONFIG_SOURCE = '<embedded default>';

export function defaultConfig(): Record<string, unknown> {
  return {
    name: 'aimm-store',
    backend: { module: 'aimm-store/backends/sqlite', path: './data/aimm-store.db' },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 9950 } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 9951 } },
    ],
    log: { level: 'info' },
  };
}
